using BlockDriver.Testing;

namespace BlockDriver.Abstractions.Tests;

public sealed class TempDirectoryTests
{
    [Fact]
    public void Dispose_deletes_the_directory_with_its_contents()
    {
        var temp = new TempDirectory("temp-test");
        File.WriteAllText(temp.GetFilePath("a.txt"), "a");
        Directory.CreateDirectory(Path.Combine(temp.FullName, "sub"));
        File.WriteAllText(Path.Combine(temp.FullName, "sub", "b.txt"), "b");
        Assert.StartsWith(Path.GetTempPath(), temp.FullName, StringComparison.Ordinal);

        temp.Dispose();
        temp.Dispose();

        Assert.False(Directory.Exists(temp.FullName));
    }

    [Fact]
    public void Each_instance_gets_its_own_directory()
    {
        using var first = new TempDirectory();
        using var second = new TempDirectory();

        Assert.NotEqual(first.FullName, second.FullName);
        Assert.True(Directory.Exists(first.FullName) && Directory.Exists(second.FullName));
    }
}
