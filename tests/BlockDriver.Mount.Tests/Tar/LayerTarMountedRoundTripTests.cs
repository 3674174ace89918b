using BlockDriver.Core;
using BlockDriver.Mount.Tar;
using Xunit.Abstractions;
using static BlockDriver.Mount.Tests.Tar.RawTar;

namespace BlockDriver.Mount.Tests.Tar;

/// <summary>Every round-trip case in one tar, applied for real onto a layer mounted as ext4 (FUSE + loop) over the
/// base file system layer, diffed against it, and compared entry by entry; the sparse files keep their holes on the
/// mounted file system.</summary>
[Collection(MountTestCollection.Name)]
public sealed class LayerTarMountedRoundTripTests(ITestOutputHelper output) : MounterTestBase(withBaseFilesystem: true)
{
    [Fact]
    public async Task Every_case_applied_to_a_mounted_layer_diffs_back_to_the_same_entries()
    {
        // Each case under a directory of its own, so that one tree holds them all.
        var entries = new List<Entry>();
        foreach ((string name, Entry[] cases) in TarCases.All)
        {
            byte[] prefix = B(name.Replace(' ', '-'));
            entries.Add(Dir(prefix));
            foreach (Entry entry in cases)
            {
                TarHeader h = entry.Header;
                var moved = new TarHeader
                {
                    Name = ByteNames.Join(prefix, h.Name),
                    TypeFlag = h.TypeFlag,
                    Mode = h.Mode,
                    Uid = h.Uid,
                    Gid = h.Gid,
                    Size = h.Size,
                    RealSize = h.RealSize,
                    MtimeSeconds = h.MtimeSeconds,
                    MtimeNanoseconds = h.MtimeNanoseconds,
                    LinkName = h.TypeFlag == TarTypeFlag.HardLink ? ByteNames.Join(prefix, h.LinkName) : h.LinkName,
                    DevMajor = h.DevMajor,
                    DevMinor = h.DevMinor,
                    Sparse = h.Sparse,
                };
                foreach ((byte[] key, byte[] value) in h.Xattrs)
                {
                    moved.Xattrs[key] = value;
                }

                entries.Add(entry with { Header = moved });
            }
        }

        await F.Store.CreateAsync(new LayerSpec { Id = "img", Parent = BaseFilesystem.LayerId, Kind = LayerKind.Image });
        long written = await LayerContent.ApplyTarAsync(F.Mounter, "img", Build([.. entries]));
        using var diff = new MemoryStream();
        IReadOnlyList<LayerChange> changes = await LayerContent.DiffAsync(F.Mounter, "img", diff);
        diff.Position = 0;

        output.WriteLine($"{entries.Count} entries, {written} bytes of content applied, {changes.Count} changes, diff of {diff.Length} bytes");
        Assert.All(changes, c => Assert.Equal(ChangeKind.Added, c.Kind));
        Assert.Equal(await ReadAsync(Build([.. entries])), await ReadAsync(diff));

        string dir = F.Dir("check");
        await F.Mounter.MountAsync("img", dir);
        try
        {
            TarCases.AssertHolesKept(dir, entries);
        }
        finally
        {
            await F.Mounter.UnmountAsync(dir);
        }
    }
}
