using BlockDriver.Mount.Tar;
using BlockDriver.Testing;
using Xunit.Abstractions;
using static BlockDriver.Mount.Tests.Tar.RawTar;

namespace BlockDriver.Mount.Tests.Tar;

/// <summary>Each case: a tar is applied to an empty tree (a directory on the host's ext4), the tree is diffed as a
/// base layer, and the two tars must hold the same entries field by field (name bytes, type, mode, owner, mtime,
/// xattr bytes, link target bytes, device numbers, content). <see cref="LayerTarMountedRoundTripTests"/> does all
/// cases at once on a mounted layer.</summary>
public sealed class TarRoundTripTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempDirectory _temp = new("tar-rt");

    public static TheoryData<string> Cases => [.. TarCases.All.Keys];

    public void Dispose()
    {
        TarCases.RemoveTree(_temp.GetFilePath("root"));
        _temp.Dispose();
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task A_tar_applied_and_diffed_gives_the_same_entries_back(string name)
    {
        string root = _temp.GetFilePath("root");
        Directory.CreateDirectory(root);
        Entry[] entries = TarCases.All[name];

        await LayerTarApplier.ApplyAsync(Build(entries), root);
        using var diff = new MemoryStream();
        await LayerTarWriter.WriteDiffAsync(null, root, diff);
        diff.Position = 0;

        List<string> expected = await ReadAsync(Build(entries));
        List<string> actual = await ReadAsync(diff);
        output.WriteLine(string.Join('\n', actual));
        Assert.Equal(expected, actual);
        TarCases.AssertHolesKept(root, entries);
    }
}
