using System.Diagnostics;
using Xunit.Abstractions;

namespace BlockDriver.Core.Tests;

/// <summary><c>blockdriver serve nbd</c> with store layers as exports, driven by the real qemu tools: a sealed layer
/// is served read-only and reads as its export; a writable container layer takes qemu-io's writes into its own
/// file only.</summary>
public sealed class NbdLayerExportTests(ITestOutputHelper output) : StoreTestBase
{
    [Fact]
    public async Task Layers_are_served_by_id_sealed_ones_read_only()
    {
        await SealedBaseAsync(length: 4 << 20);
        await Store.CloneAsync("base", "c");
        string baseFile = Path.Combine(Root, "layers", "base.vhdx");
        string before = Sha256(baseFile);
        string socket = Path.Combine(Temp.FullName, "nbd.sock");
        await Store.DisposeAsync();

        using Process server = StartServer(socket, "base", "c");
        try
        {
            string qemuImg = ChildProcess.Locate("qemu-img") ?? throw new InvalidOperationException("qemu-img (qemu-utils) is required");
            string qemuIo = ChildProcess.Locate("qemu-io") ?? throw new InvalidOperationException("qemu-io (qemu-utils) is required");
            string served = Temp.GetFilePath("served.raw");
            await RunOkAsync(qemuImg, "convert", "-f", "raw", "-O", "raw", $"nbd+unix:///base?socket={socket}", served);
            await RunOkAsync(qemuIo, "-f", "raw", "-c", "write -P 0x5a 1M 64k", $"nbd+unix:///c?socket={socket}");
            ProcessResult refused = await ChildProcess.RunAsync(qemuIo, ["-f", "raw", "-c", "write -P 0x11 0 4k", $"nbd+unix:///base?socket={socket}"], Temp.FullName);
            output.WriteLine(refused.ToString());
            Assert.True(refused.ExitCode != 0 || refused.Stdout.Contains("failed", StringComparison.OrdinalIgnoreCase) || refused.Stderr.Length > 0, refused.ToString());

            await StopAsync(server);
            await ReopenStoreAsync();
            Assert.Equal(await ContentAsync("base"), await File.ReadAllBytesAsync(served));
            byte[] container = await ContentAsync("c");
            Assert.All(container.AsSpan(1 << 20, 64 << 10).ToArray(), b => Assert.Equal(0x5a, b));
            Assert.Equal(before, Sha256(baseFile));
        }
        finally
        {
            if (!server.HasExited)
            {
                server.Kill();
            }
        }
    }

    private Process StartServer(string socket, params string[] exports)
    {
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? ChildProcess.Locate("dotnet") ?? "dotnet";
        var start = new ProcessStartInfo(dotnet) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in (string[])[Path.Combine(AppContext.BaseDirectory, "blockdriver.dll"), "--root", Root, "serve", "nbd", "--socket", socket, .. exports])
        {
            start.ArgumentList.Add(arg);
        }

        Process process = Process.Start(start)!;
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            string? line = process.StandardOutput.ReadLine() ?? throw new InvalidOperationException($"serve nbd exited: {process.StandardError.ReadToEnd()}");
            output.WriteLine(line);
            if (line.StartsWith("listening:", StringComparison.Ordinal) || DateTime.UtcNow > deadline)
            {
                return process;
            }
        }
    }

    private async Task StopAsync(Process server)
    {
        await ChildProcess.RunAsync("kill", ["-TERM", server.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)], Temp.FullName);
        await server.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        output.WriteLine(await server.StandardOutput.ReadToEndAsync());
        Assert.Equal(0, server.ExitCode);
    }

    private async Task RunOkAsync(string program, params string[] args)
    {
        ProcessResult result = await ChildProcess.RunAsync(program, args, Temp.FullName);
        output.WriteLine($"$ {Path.GetFileName(program)} {string.Join(' ', args)}\n{result}");
        Assert.True(result.ExitCode == 0, result.ToString());
    }
}
