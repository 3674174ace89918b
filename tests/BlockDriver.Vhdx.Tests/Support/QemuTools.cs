using System.Text.Json;
using BlockDriver.Testing;

namespace BlockDriver.Vhdx.Tests.Support;

/// <summary>Runs qemu-img and qemu-io (package qemu-utils). A missing tool fails the test with the reason: CI
/// installs them, so a skip would hide a broken environment.</summary>
internal static class QemuTools
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public override string ToString() => $"exit {ExitCode}; stdout: {Stdout.Trim()}; stderr: {Stderr.Trim()}";
    }

    public static Task<Result> ImgAsync(params string[] args) => RunAsync("qemu-img", args);

    public static Task<Result> IoAsync(params string[] args) => RunAsync("qemu-io", args);

    /// <summary>Runs qemu-img and fails the test unless it exits 0.</summary>
    public static async Task<Result> ImgOkAsync(params string[] args)
    {
        Result result = await ImgAsync(args);
        Assert.True(result.ExitCode == 0, $"qemu-img {string.Join(' ', args)} failed: {result}");
        return result;
    }

    /// <summary>Runs qemu-io on a VHDX file with the given commands (each a <c>-c</c>) and fails unless it exits 0
    /// without reporting an error.</summary>
    public static async Task IoOkAsync(string path, params string[] commands)
    {
        var args = new List<string> { "-f", "vhdx" };
        foreach (string command in commands)
        {
            args.Add("-c");
            args.Add(command);
        }

        args.Add(path);
        Result result = await IoAsync([.. args]);
        Assert.True(result.ExitCode == 0 && !result.Stdout.Contains("failed", StringComparison.OrdinalIgnoreCase),
            $"qemu-io {string.Join(' ', args)} failed: {result}");
    }

    /// <summary><c>qemu-img info --output=json</c>, parsed.</summary>
    public static async Task<JsonElement> InfoAsync(string path)
    {
        Result result = await ImgOkAsync("info", "-f", "vhdx", "--output=json", path);
        using var document = JsonDocument.Parse(result.Stdout);
        return document.RootElement.Clone();
    }

    private static string Locate(string tool)
    {
        foreach (string directory in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin").Split(':').Append("/usr/bin"))
        {
            string candidate = Path.Combine(directory, tool);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        Assert.Fail($"{tool} was not found on PATH or in /usr/bin. Install qemu-utils (apt-get install qemu-utils); the interop tests need the real qemu.");
        return tool;
    }

    private static async Task<Result> RunAsync(string tool, string[] args)
    {
        ProcessResult result = await ChildProcess.RunAsync(Locate(tool), args, Environment.CurrentDirectory);
        return new Result(result.ExitCode, result.Stdout, result.Stderr);
    }
}
