using System.Diagnostics;
using BlockDriver.Abstractions;

namespace BlockDriver.Mount;

/// <summary>Runs a system tool (mkfs.ext4) to completion with its output captured, for the error message.</summary>
internal static class ExternalTool
{
    /// <summary>Runs <paramref name="program"/> and returns its standard output, trimmed; a non-zero exit or a
    /// missing program is Unavailable with the tool's stderr. Cancellation kills the tool.</summary>
    public static async Task<string> RunAsync(string program, IReadOnlyList<string> args, CancellationToken ct)
    {
        var start = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = "/",
        };
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        Process process;
        try
        {
            process = Process.Start(start) ?? throw new BlockDriverException(ErrorKind.Unavailable, $"{program} did not start.");
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new BlockDriverException(ErrorKind.Unavailable, $"{program} could not be run (is it installed?): {ex.Message}", ex);
        }

        using (process)
        {
            Task<string> stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
            Task<string> stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
            try
            {
                await process.WaitForExitAsync(ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw;
            }

            string output = (await stderr.ConfigureAwait(false)).Trim();
            string standardOutput = (await stdout.ConfigureAwait(false)).Trim();
            if (process.ExitCode != 0)
            {
                throw new BlockDriverException(ErrorKind.Unavailable,
                    $"{program} {string.Join(' ', args)} exited with {process.ExitCode}: {(output.Length > 0 ? output : standardOutput)}");
            }

            return standardOutput;
        }
    }
}
