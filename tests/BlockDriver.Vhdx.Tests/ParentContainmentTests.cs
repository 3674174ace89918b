using System.Buffers.Binary;
using BlockDriver.Abstractions;
using BlockDriver.Vhdx.Tests.Support;

namespace BlockDriver.Vhdx.Tests;

/// <summary>Where a parent may come from (<see cref="VhdxOpenOptions.ParentRoot"/>): symbolic links resolved before the
/// containment check, nothing said of a file outside, the opened handle checked again; and a parent locator whose
/// strings could decode to far more than the item holds.</summary>
public sealed class ParentContainmentTests : IDisposable
{
    private const int MiB = 1 << 20;
    private readonly ScratchDirectory _dir = new("bd-contain");

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void RealPath_resolves_links_on_the_way_and_keeps_a_missing_rest_as_written()
    {
        string real = _dir.Subdirectory("real");
        string outside = _dir.Subdirectory("outside");
        Directory.CreateSymbolicLink(_dir.File("link"), real);
        File.CreateSymbolicLink(Path.Combine(real, "out"), Path.Combine("..", "outside", "secret"));
        File.CreateSymbolicLink(Path.Combine(real, "loop"), Path.Combine(real, "loop"));

        Assert.Equal(real + "/x/y", ChainLinks.RealPath(_dir.File("link/x/y")));
        Assert.Equal(Path.Combine(outside, "secret"), ChainLinks.RealPath(_dir.File("link/out")));
        Assert.Equal(outside, ChainLinks.RealPath(_dir.File("link/out/..")));
        Assert.Equal(_dir.FullName, ChainLinks.RealPath(_dir.File("link/..")));
        Assert.Throws<BlockDriverException>(() => ChainLinks.RealPath(Path.Combine(real, "loop")));
        Assert.True(ChainLinks.IsInside(real + "/a", real));
        Assert.False(ChainLinks.IsInside(real + "x/a", real));
        Assert.False(ChainLinks.IsInside(real, real));
    }

    [Fact]
    public async Task Symbolic_link_in_the_root_to_a_file_outside_is_not_followed()
    {
        string root = _dir.Subdirectory("root");
        string outside = _dir.Subdirectory("outside");
        string parent = Path.Combine(outside, "base.vhdx");
        VhdxFile.CreateDynamic(parent, 8 * MiB);
        File.CreateSymbolicLink(Path.Combine(root, "base.vhdx"), parent);
        string child = Path.Combine(root, "child.vhdx");
        await VhdxFile.CreateDifferencingAsync(child, Path.Combine(root, "base.vhdx"));

        VhdxFormatException e = Assert.Throws<VhdxFormatException>(() => VhdxDisk.Open(child, new VhdxOpenOptions { ReadOnly = true, ParentRoot = root }));
        Assert.Contains($"not inside {root}", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("outside", e.Message, StringComparison.Ordinal);

        // The same file through a link that stays inside is fine.
        File.Delete(Path.Combine(root, "base.vhdx"));
        File.Move(parent, Path.Combine(root, "real-base.vhdx"));
        File.CreateSymbolicLink(Path.Combine(root, "base.vhdx"), "real-base.vhdx");
        await using VhdxDisk disk = VhdxDisk.Open(child, new VhdxOpenOptions { ReadOnly = true, ParentRoot = root });
        Assert.Equal(2, disk.Files.Count);
    }

    [Fact]
    public void A_handle_opened_on_a_file_outside_the_root_is_refused_before_it_is_read()
    {
        string root = _dir.Subdirectory("root");
        string outside = _dir.Subdirectory("outside");
        File.WriteAllText(Path.Combine(outside, "secret"), "not a VHDX");
        File.WriteAllText(Path.Combine(root, "inside"), "not a VHDX");
        using (var handle = File.OpenHandle(Path.Combine(outside, "secret")))
        {
            VhdxFormatException e = Assert.Throws<VhdxFormatException>(() => ChainLinks.CheckOpenedInside(handle, Path.Combine(root, "base.vhdx"), root));
            Assert.Contains($"not inside {root}", e.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("secret", e.Message, StringComparison.Ordinal);
        }

        using (var handle = File.OpenHandle(Path.Combine(root, "inside")))
        {
            ChainLinks.CheckOpenedInside(handle, Path.Combine(root, "inside"), root);
        }

        // Through VhdxFile.Open: refused on the handle, not with a parse error about the outside file.
        File.CreateSymbolicLink(Path.Combine(root, "swapped.vhdx"), Path.Combine(outside, "secret"));
        VhdxFormatException open = Assert.Throws<VhdxFormatException>(() => VhdxFile.Open(Path.Combine(root, "swapped.vhdx"), readOnly: true, root));
        Assert.Equal("parent locator", open.Structure);
    }

    [Fact]
    public async Task Parent_locator_whose_strings_overlap_past_the_item_is_rejected()
    {
        // Three entries whose keys and values all point at the same long string: each lies inside the item, but
        // together they claim more bytes than it holds (with 87,000 such entries a 1 MiB item decoded to GiBs).
        string parent = _dir.File("base.vhdx");
        string child = _dir.File("child.vhdx");
        VhdxFile.CreateDynamic(parent, 8 * MiB);
        await VhdxFile.CreateDifferencingAsync(child, parent);
        RawVhdx.EditMetadata(child, region =>
        {
            (_, int offset, int length) = RawVhdx.MetadataItem(region, RawVhdx.ParentLocator);
            Span<byte> item = region.AsSpan(offset, length);
            int count = BinaryPrimitives.ReadUInt16LittleEndian(item[18..]);
            int stringsStart = 20 + (count * 12);
            ushort longest = (ushort)((length - stringsStart) & ~1);
            for (int i = 0; i < count; i++)
            {
                Span<byte> entry = item.Slice(20 + (i * 12), 12);
                BinaryPrimitives.WriteUInt16LittleEndian(entry[10..], longest);
                BinaryPrimitives.WriteUInt32LittleEndian(entry[4..], (uint)stringsStart);
            }
        });

        VhdxFormatException e = Assert.Throws<VhdxFormatException>(() => VhdxFile.Open(child, readOnly: true));
        Assert.Contains("bytes of keys and values", e.Message, StringComparison.Ordinal);
    }
}
