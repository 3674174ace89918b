using Xunit.Abstractions;

namespace BlockDriver.Docker.Tests;

/// <summary>Settings the plugin cannot work with stop the daemon's start with a clear message.</summary>
[Collection(DockerTestCollection.Name)]
public sealed class PluginConfigurationTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("--Docker:Name=../evil", "Docker:Name \"../evil\" is not a plugin name")]
    [InlineData("--Docker:BaseSize=huge", "Docker:BaseSize \"huge\" is not a size")]
    [InlineData("--Docker:UnmountDelay=soon", "Docker:UnmountDelay \"soon\" is not a delay")]
    [InlineData("--Docker:UnmountDelay=-1", "Docker:UnmountDelay \"-1\" is not a delay")]
    [InlineData("--Docker:UnmountDelay=2h", "Docker:UnmountDelay \"2h\" is not a delay")]
    public async Task Bad_settings_stop_the_daemon_with_a_clear_message(string setting, string message)
    {
        await using PluginTestStore test = PluginTestStore.Create(output);
        ProcessResult result = await ChildProcess.RunAsync(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet",
            [Path.Combine(AppContext.BaseDirectory, "blockdriver.dll"), "--root", test.Root, "daemon", "--docker", $"--Docker:Socket={test.SocketPath}", setting], test.Dir(""));
        output.WriteLine(result.ToString());
        Assert.Equal(1, result.ExitCode);
        Assert.Contains(message, result.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(test.SocketPath));
        Assert.Empty(test.Leftovers());
    }
}
