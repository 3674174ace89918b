namespace BlockDriver.Cli.Tests.Support;

/// <summary>Runs qemu-img (package qemu-utils). A missing qemu-img fails the test with the reason: CI installs it,
/// so a skip would hide a broken environment.</summary>
internal static class QemuImg
{
    public static async Task<ProcessResult> RunAsync(string workingDirectory, params string[] args)
    {
        string? path = ChildProcess.Locate("qemu-img");
        Assert.True(path is not null,
            "qemu-img was not found on PATH or in /usr/bin. Install qemu-utils (apt-get install qemu-utils); the interop tests need the real qemu-img.");
        return await ChildProcess.RunAsync(path!, args, workingDirectory);
    }
}
