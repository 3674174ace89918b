using System.Buffers.Binary;
using System.Diagnostics;
using BlockDriver.Abstractions;
using BlockDriver.Vhdx.Tests.Support;

namespace BlockDriver.Vhdx.Tests;

/// <summary>Malformed and inconsistent files are refused with a typed error that names the problem, and refusing
/// them changes nothing on disk, for read-only and writable opens alike. Files are made by our writer and then
/// patched byte by byte (<see cref="RawVhdx"/>) at the offsets MS-VHDX gives.</summary>
public sealed class MalformedFileTests : IDisposable
{
    private const int MiB = 1 << 20;
    private const long DiskLength = 8L * MiB;
    private const int BlockSize = MiB;

    // 1 MiB blocks, 512-byte sectors: R = 2^23 × 512 / 2^20 = 4096 payload entries per chunk, so payload block k of
    // this 8-block disk is BAT entry k and chunk 0's sector-bitmap entry is entry 4096.
    private const int ChunkRatio = 4096;

    private readonly ScratchDirectory _dir = new("bd-malformed");

    public void Dispose() => _dir.Dispose();

    // ---- Headers -------------------------------------------------------------------------------------------

    [Theory]
    [InlineData(0, "signature")]
    [InlineData(1, "signature")]
    [InlineData(0, "checksum")]
    [InlineData(1, "checksum")]
    public async Task One_bad_header_copy_is_ignored_and_the_other_is_used(int slot, string damage)
    {
        (string path, byte[] content) = await CreateBaseAsync();
        ulong otherSequence = BinaryPrimitives.ReadUInt64LittleEndian(RawVhdx.Read(path, slot == 0 ? RawVhdx.Header2Offset : RawVhdx.Header1Offset, 16).AsSpan(8));
        RawVhdx.EditHeader(path, slot, h =>
        {
            if (damage == "signature")
            {
                h[3] = (byte)'X'; // "heaX"
            }
            else
            {
                h[1000] ^= 0x40; // a reserved byte: only the CRC-32C notices
            }
        }, fixChecksum: damage == "signature");
        string before = RawVhdx.Sha256(path);

        await using (VhdxDisk disk = VhdxDisk.Open(path, new VhdxOpenOptions { ReadOnly = true }))
        {
            Assert.Equal(otherSequence, disk.Top.Header.SequenceNumber);
            await AssertContentAsync(disk, content);
        }

        Assert.Equal(before, RawVhdx.Sha256(path));

        // A writable session rewrites both copies, so the damaged one is repaired.
        await using (VhdxDisk disk = VhdxDisk.Open(path))
        {
            await AssertContentAsync(disk, content);
        }

        foreach (long offset in new[] { RawVhdx.Header1Offset, RawVhdx.Header2Offset })
        {
            byte[] header = RawVhdx.Read(path, offset, RawVhdx.HeaderSize);
            Assert.True("head"u8.SequenceEqual(header.AsSpan(0, 4)), $"header at {offset} was not rewritten");
            Assert.Equal(Crc32CReference.ComputeWithZeroedField(header), BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(4)));
        }
    }

    [Fact]
    public async Task Both_header_copies_bad_is_rejected()
    {
        (string path, _) = await CreateBaseAsync();
        RawVhdx.EditHeader(path, 0, h => h[0] = 0, fixChecksum: false);
        RawVhdx.EditHeader(path, 1, h => h[500] ^= 1, fixChecksum: false);

        await AssertRejectedAsync<VhdxFormatException>(path, "neither header copy is valid");
    }

    [Fact]
    public async Task Header_version_other_than_1_is_rejected()
    {
        (string path, _) = await CreateBaseAsync();
        foreach (int slot in new[] { 0, 1 })
        {
            RawVhdx.EditHeader(path, slot, h => BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(66), 2));
        }

        await AssertRejectedAsync<VhdxFormatException>(path, "unsupported version 2");
    }

    [Fact]
    public async Task File_type_identifier_must_be_vhdxfile()
    {
        (string path, _) = await CreateBaseAsync();
        RawVhdx.Write(path, 0, "vhdxfilX"u8);

        await AssertRejectedAsync<VhdxFormatException>(path, "\"vhdxfile\"");
    }

    // ---- Region table ----------------------------------------------------------------------------------------

    [Theory]
    [InlineData("BAT", 1L << 30)]
    [InlineData("metadata", 1L << 30)]
    [InlineData("BAT", 0x7FFF_FFFF_FFF0_0000)] // offset + length overflows a long: must not slip past the bound
    [InlineData("metadata", 0x7FFF_FFFF_FFF0_0000)]
    public async Task Region_lying_outside_the_file_is_rejected(string region, long offset)
    {
        (string path, _) = await CreateBaseAsync();
        Guid id = region == "BAT" ? RawVhdx.BatRegion : RawVhdx.MetadataRegion;
        RawVhdx.EditRegionTables(path, t => BinaryPrimitives.WriteUInt64LittleEndian(t.AsSpan(RawVhdx.RegionEntryOffset(t, id) + 16), (ulong)offset));

        await AssertRejectedAsync<VhdxFormatException>(path, "past the end of the");
    }

    [Fact]
    public async Task Region_table_with_a_bad_checksum_in_both_copies_is_rejected()
    {
        (string path, _) = await CreateBaseAsync();
        RawVhdx.EditRegionTables(path, t => t[40_000] ^= 0x01, fixChecksum: false);

        await AssertRejectedAsync<VhdxFormatException>(path, "region table at offset 196608: CRC-32C mismatch");
    }

    [Fact]
    public async Task Region_table_with_a_bad_checksum_in_the_first_copy_falls_back_to_the_second()
    {
        (string path, byte[] content) = await CreateBaseAsync();
        RawVhdx.EditRegionTables(path, t => t[40_000] ^= 0x01, fixChecksum: false, bothCopies: false);
        string before = RawVhdx.Sha256(path);

        await using (VhdxDisk disk = VhdxDisk.Open(path, new VhdxOpenOptions { ReadOnly = true }))
        {
            await AssertContentAsync(disk, content);
        }

        Assert.Equal(before, RawVhdx.Sha256(path));
    }

    [Fact]
    public async Task Region_not_aligned_to_1_MiB_is_rejected()
    {
        (string path, _) = await CreateBaseAsync();
        RawVhdx.EditRegionTables(path, t => BinaryPrimitives.WriteUInt64LittleEndian(t.AsSpan(RawVhdx.RegionEntryOffset(t, RawVhdx.BatRegion) + 16), (3L * MiB) + 4096));

        await AssertRejectedAsync<VhdxFormatException>(path, "is not 1 MiB aligned");
    }

    [Theory]
    [InlineData(1L * MiB)] // the log
    [InlineData(2L * MiB)] // the metadata region
    [InlineData(3L * MiB)] // the BAT region
    [InlineData(4L * MiB)] // payload block 0
    public async Task Region_overlapping_another_structure_is_rejected(long offset)
    {
        // An optional region we do not know must still keep clear of everything else (MS-VHDX 2.2.3).
        (string path, _) = await CreateBaseAsync();
        AddRegion(path, Guid.NewGuid(), offset, required: false);

        await AssertRejectedAsync<VhdxFormatException>(path, "overlaps");
    }

    [Fact]
    public async Task Unknown_required_region_is_rejected()
    {
        (string path, _) = await CreateBaseAsync();
        var unknown = Guid.NewGuid();
        AddRegion(path, unknown, 16L * MiB, required: true);

        await AssertRejectedAsync<VhdxFormatException>(path, $"unknown required region {unknown}");
    }

    [Fact]
    public async Task Missing_BAT_region_is_rejected()
    {
        (string path, _) = await CreateBaseAsync();
        RawVhdx.EditRegionTables(path, t =>
        {
            int at = RawVhdx.RegionEntryOffset(t, RawVhdx.BatRegion);
            Guid.NewGuid().TryWriteBytes(t.AsSpan(at, 16));
            BinaryPrimitives.WriteUInt32LittleEndian(t.AsSpan(at + 28), 0); // an optional unknown region now
        });

        await AssertRejectedAsync<VhdxFormatException>(path, "the BAT or the metadata region is missing");
    }

    // ---- BAT -------------------------------------------------------------------------------------------------

    [Theory]
    [InlineData(1L << 30)]
    [InlineData(0L)] // the header section
    [InlineData(unchecked((long)0xFFFF_FFFF_FFF0_0000))] // FileOffsetMB all ones
    [InlineData(0x7FFF_FFFF_FFF0_0000)] // offset + block size overflows a long
    public async Task BAT_entry_pointing_outside_the_file_is_rejected(long offset)
    {
        (string path, _) = await CreateBaseAsync();
        RawVhdx.WriteBatEntry(path, 3, RawVhdx.BatEntry(RawVhdx.FullyPresent, offset));

        await AssertRejectedAsync<VhdxFormatException>(path, "lies outside the");
    }

    [Theory]
    [InlineData("metadata")]
    [InlineData("log")]
    [InlineData("BAT")]
    [InlineData("block")]
    public async Task BAT_entry_overlapping_another_structure_is_rejected(string target)
    {
        (string path, _) = await CreateBaseAsync();
        long offset = target switch
        {
            "metadata" => RawVhdx.Region(path, RawVhdx.MetadataRegion).Offset,
            "log" => (long)BinaryPrimitives.ReadUInt64LittleEndian(RawVhdx.Read(path, RawVhdx.Header2Offset + 72, 8)),
            "BAT" => RawVhdx.Region(path, RawVhdx.BatRegion).Offset,
            _ => (long)(RawVhdx.ReadBatEntry(path, 1) & ~0xF_FFFFUL),
        };
        RawVhdx.WriteBatEntry(path, 3, RawVhdx.BatEntry(RawVhdx.FullyPresent, offset));

        await AssertRejectedAsync<VhdxFormatException>(path, "overlaps");
    }

    [Fact]
    public async Task Partially_present_block_in_a_dynamic_file_is_rejected()
    {
        (string path, _) = await CreateBaseAsync();
        RawVhdx.WriteBatEntry(path, 1, RawVhdx.ReadBatEntry(path, 1) | RawVhdx.PartiallyPresent);

        await AssertRejectedAsync<VhdxFormatException>(path, "payload state 7 is invalid in a non-differencing file");
    }

    [Fact]
    public async Task Reserved_payload_state_is_rejected()
    {
        (string path, _) = await CreateBaseAsync();
        RawVhdx.WriteBatEntry(path, 5, RawVhdx.BatEntry(4, 0));

        await AssertRejectedAsync<VhdxFormatException>(path, "payload state 4 is invalid");
    }

    [Fact]
    public async Task Partially_present_block_whose_chunk_has_no_sector_bitmap_is_rejected()
    {
        (string basePath, _) = await CreateBaseAsync();
        string child = await CreateChildAsync(basePath);
        Assert.Equal((ulong)RawVhdx.PartiallyPresent, RawVhdx.ReadBatEntry(child, 3) & 7);
        RawVhdx.WriteBatEntry(child, ChunkRatio, 0);

        await AssertRejectedAsync<VhdxFormatException>(child, "PARTIALLY_PRESENT but its chunk has no sector bitmap");
    }

    // ---- Metadata --------------------------------------------------------------------------------------------

    [Theory]
    [InlineData((1UL << 46) + 512)] // 64 TiB + one sector
    [InlineData(1000UL)] // not a multiple of the sector size
    [InlineData(0UL)]
    [InlineData(ulong.MaxValue)]
    public async Task Absurd_virtual_size_is_rejected(ulong size)
    {
        (string path, _) = await CreateBaseAsync();
        RawVhdx.SetMetadataItem(path, RawVhdx.VirtualDiskSize, BitConverter.GetBytes(size));

        await AssertRejectedAsync<VhdxFormatException>(path, "Virtual Disk Size");
    }

    [Fact]
    public async Task Virtual_size_beyond_what_the_BAT_region_holds_is_rejected()
    {
        (string path, _) = await CreateBaseAsync();

        // 1 TiB in 1 MiB blocks needs 2^20 payload entries (8 MiB of BAT); the region is 1 MiB.
        RawVhdx.SetMetadataItem(path, RawVhdx.VirtualDiskSize, BitConverter.GetBytes(1UL << 40));

        await AssertRejectedAsync<VhdxFormatException>(path, "is smaller than the");
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(512u * 1024)]
    [InlineData(3u * MiB)]
    [InlineData(512u * MiB)]
    [InlineData(uint.MaxValue)]
    public async Task Absurd_block_size_is_rejected(uint blockSize)
    {
        (string path, _) = await CreateBaseAsync();
        RawVhdx.EditMetadata(path, region =>
        {
            (_, int offset, _) = RawVhdx.MetadataItem(region, RawVhdx.FileParameters);
            BinaryPrimitives.WriteUInt32LittleEndian(region.AsSpan(offset), blockSize);
        });

        await AssertRejectedAsync<VhdxFormatException>(path, $"block size {Math.Min(blockSize, int.MaxValue)} is not a power of two");
    }

    [Theory]
    [InlineData(1024u, 4096u)]
    [InlineData(0u, 512u)]
    [InlineData(512u, 520u)]
    [InlineData(uint.MaxValue, 4096u)]
    public async Task Bad_sector_size_is_rejected(uint logical, uint physical)
    {
        (string path, _) = await CreateBaseAsync();
        RawVhdx.SetMetadataItem(path, RawVhdx.LogicalSectorSize, BitConverter.GetBytes(logical));
        RawVhdx.SetMetadataItem(path, RawVhdx.PhysicalSectorSize, BitConverter.GetBytes(physical));

        await AssertRejectedAsync<VhdxFormatException>(path, "must each be 512 or 4096");
    }

    [Theory]
    [InlineData("File Parameters")]
    [InlineData("Virtual Disk Size")]
    [InlineData("Virtual Disk ID")]
    [InlineData("Logical Sector Size")]
    [InlineData("Physical Sector Size")]
    public async Task Missing_required_metadata_item_is_rejected(string name)
    {
        (string path, _) = await CreateBaseAsync();
        Guid item = name switch
        {
            "File Parameters" => RawVhdx.FileParameters,
            "Virtual Disk Size" => RawVhdx.VirtualDiskSize,
            "Virtual Disk ID" => RawVhdx.VirtualDiskId,
            "Logical Sector Size" => RawVhdx.LogicalSectorSize,
            _ => RawVhdx.PhysicalSectorSize,
        };
        RawVhdx.EditMetadata(path, region =>
        {
            // Drop the entry: move the last entry into its slot and shorten the table.
            int count = BinaryPrimitives.ReadUInt16LittleEndian(region.AsSpan(10));
            (int entry, _, _) = RawVhdx.MetadataItem(region, item);
            int last = 32 + ((count - 1) * 32);
            region.AsSpan(last, 32).CopyTo(region.AsSpan(entry));
            region.AsSpan(last, 32).Clear();
            BinaryPrimitives.WriteUInt16LittleEndian(region.AsSpan(10), (ushort)(count - 1));
        });

        await AssertRejectedAsync<VhdxFormatException>(path, $"required item {name} is missing");
    }

    [Theory]
    [InlineData(RawVhdx.IsRequired, "unknown required item")]
    [InlineData(RawVhdx.IsRequired | RawVhdx.IsUser, "unknown required user item")]
    public async Task Unknown_required_metadata_item_is_rejected(uint flags, string problem)
    {
        (string path, _) = await CreateBaseAsync();
        AddMetadataItem(path, Guid.NewGuid(), flags);

        await AssertRejectedAsync<VhdxFormatException>(path, problem);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(RawVhdx.IsUser)]
    [InlineData(RawVhdx.IsVirtualDisk)]
    public async Task Unknown_optional_metadata_item_is_ignored(uint flags)
    {
        (string path, byte[] content) = await CreateBaseAsync();
        AddMetadataItem(path, Guid.NewGuid(), flags);
        string before = RawVhdx.Sha256(path);

        await using (VhdxDisk disk = VhdxDisk.Open(path, new VhdxOpenOptions { ReadOnly = true }))
        {
            await AssertContentAsync(disk, content);
        }

        Assert.Equal(before, RawVhdx.Sha256(path));
    }

    [Theory]
    [InlineData("past the region", "lies outside the metadata region")]
    [InlineData("inside the table", "lies outside the metadata region")]
    [InlineData("onto another item", "overlaps another item")]
    public async Task Metadata_item_out_of_place_is_rejected(string where, string problem)
    {
        (string path, _) = await CreateBaseAsync();
        RawVhdx.EditMetadata(path, region =>
        {
            (int entry, _, _) = RawVhdx.MetadataItem(region, RawVhdx.VirtualDiskSize);
            (_, int other, _) = RawVhdx.MetadataItem(region, RawVhdx.FileParameters);
            uint offset = where switch
            {
                "past the region" => (uint)region.Length - 4,
                "inside the table" => 1024,
                _ => (uint)other,
            };
            BinaryPrimitives.WriteUInt32LittleEndian(region.AsSpan(entry + 16), offset);
        });

        await AssertRejectedAsync<VhdxFormatException>(path, problem);
    }

    // ---- Parent locator --------------------------------------------------------------------------------------

    [Fact]
    public async Task Parent_locator_of_unknown_type_is_rejected()
    {
        (string basePath, _) = await CreateBaseAsync();
        string child = await CreateChildAsync(basePath);
        var type = Guid.NewGuid();
        RawVhdx.EditMetadata(child, region =>
        {
            (_, int offset, _) = RawVhdx.MetadataItem(region, RawVhdx.ParentLocator);
            type.TryWriteBytes(region.AsSpan(offset, 16));
        });

        await AssertRejectedAsync<VhdxFormatException>(child, $"unknown locator type {type}");
    }

    [Theory]
    [InlineData("no parent_linkage", "missing or malformed parent_linkage")]
    [InlineData("malformed parent_linkage", "missing or malformed parent_linkage")]
    [InlineData("malformed parent_linkage2", "malformed parent_linkage2")]
    [InlineData("no paths", "no parent path")]
    [InlineData("empty value", "lies outside the item or is empty")]
    [InlineData("NUL in a value", "contains a NUL character")]
    public async Task Parent_locator_missing_what_a_child_needs_is_rejected(string defect, string problem)
    {
        (string basePath, _) = await CreateBaseAsync();
        string child = await CreateChildAsync(basePath);
        await RewriteLocatorAsync(child, entries =>
        {
            switch (defect)
            {
                case "no parent_linkage":
                    entries.Remove("parent_linkage");
                    break;
                case "malformed parent_linkage":
                    entries["parent_linkage"] = "{not-a-guid}";
                    break;
                case "malformed parent_linkage2":
                    entries["parent_linkage2"] = "12345";
                    break;
                case "no paths":
                    entries.Remove("relative_path");
                    entries.Remove("absolute_win32_path");
                    break;
                case "empty value":
                    entries["relative_path"] = string.Empty;
                    break;
                default:
                    entries["relative_path"] = ".\\base.vhdx\0.txt";
                    break;
            }
        });

        await AssertRejectedAsync<VhdxFormatException>(child, problem);
    }

    [Theory]
    [InlineData(0, 60_000u)] // key offset far past the item
    [InlineData(4, 0xFFFF_FFFFu)] // value offset at the top of the u32 range
    [InlineData(8, 0xFFFFu)] // key length
    [InlineData(10, 3u)] // odd value length: not UTF-16
    [InlineData(0, 0u)] // offset 0 is reserved for "absent"
    public async Task Parent_locator_string_outside_the_item_is_rejected(int field, uint value)
    {
        (string basePath, _) = await CreateBaseAsync();
        string child = await CreateChildAsync(basePath);
        RawVhdx.EditMetadata(child, region =>
        {
            (_, int offset, _) = RawVhdx.MetadataItem(region, RawVhdx.ParentLocator);
            Span<byte> entry = region.AsSpan(offset + 20, 12);
            if (field < 8)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(entry[field..], value);
            }
            else
            {
                BinaryPrimitives.WriteUInt16LittleEndian(entry[field..], (ushort)value);
            }
        });

        await AssertRejectedAsync<VhdxFormatException>(child, "lies outside the item or is empty");
    }

    [Fact]
    public async Task Parent_locator_entry_count_beyond_the_item_is_rejected()
    {
        (string basePath, _) = await CreateBaseAsync();
        string child = await CreateChildAsync(basePath);
        RawVhdx.EditMetadata(child, region =>
        {
            (_, int offset, _) = RawVhdx.MetadataItem(region, RawVhdx.ParentLocator);
            BinaryPrimitives.WriteUInt16LittleEndian(region.AsSpan(offset + 18), ushort.MaxValue);
        });

        await AssertRejectedAsync<VhdxFormatException>(child, "entries do not fit");
    }

    [Fact]
    public async Task HasParent_without_a_parent_locator_is_rejected()
    {
        (string basePath, _) = await CreateBaseAsync();
        string child = await CreateChildAsync(basePath);
        await RewriteMetadataAsync(child, m => m with { ParentLocator = null });

        await AssertRejectedAsync<VhdxFormatException>(child, "HasParent is set but there is no parent locator");
    }

    [Fact]
    public async Task Parent_locator_without_HasParent_is_rejected()
    {
        (string basePath, _) = await CreateBaseAsync();
        string child = await CreateChildAsync(basePath, write: false);
        RawVhdx.EditMetadata(child, region =>
        {
            (_, int offset, _) = RawVhdx.MetadataItem(region, RawVhdx.FileParameters);
            region[offset + 4] &= unchecked((byte)~2);
        });

        await AssertRejectedAsync<VhdxFormatException>(child, "a parent locator is present but HasParent is clear");
    }

    // ---- Chains ----------------------------------------------------------------------------------------------

    [Theory]
    [InlineData("relative_path as made")]
    [InlineData("relative_path through the root")]
    [InlineData("absolute_win32_path only")]
    public async Task Parent_path_escaping_the_parent_root_is_rejected(string locator)
    {
        // base.vhdx sits beside layers/, not in it.
        (string basePath, _) = await CreateBaseAsync();
        string layers = _dir.Subdirectory("layers");
        string child = await CreateChildAsync(basePath, Path.Combine("layers", "child.vhdx"));
        if (locator == "relative_path through the root")
        {
            await RewriteLocatorAsync(child, e => e["relative_path"] = ".\\sub\\..\\..\\base.vhdx");
        }
        else if (locator == "absolute_win32_path only")
        {
            await RewriteLocatorAsync(child, e => e.Remove("relative_path"));
        }

        await AssertRejectedAsync<VhdxFormatException>(child, "not inside " + layers, parentRoot: layers, chainOnly: true);

        // Without the root, the same chain is fine.
        await using VhdxDisk disk = VhdxDisk.Open(child, new VhdxOpenOptions { ReadOnly = true });
        Assert.Equal(2, disk.Files.Count);
    }

    [Fact]
    public async Task Missing_parent_is_reported_as_not_found()
    {
        (string basePath, _) = await CreateBaseAsync();
        string child = await CreateChildAsync(basePath);
        File.Move(basePath, basePath + ".moved");

        BlockDriverException e = await AssertRejectedAsync<BlockDriverException>(child, "parent not found", ErrorKind.NotFound, chainOnly: true);
        Assert.Contains("base.vhdx", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Parent_written_after_the_child_was_made_breaks_the_chain()
    {
        (string basePath, _) = await CreateBaseAsync();
        string child = await CreateChildAsync(basePath);
        await using (VhdxDisk parent = VhdxDisk.Open(basePath))
        {
            await parent.WriteAsync(0, new byte[512]);
        }

        await AssertRejectedAsync<BlockDriverException>(child, $"parent {basePath} has changed since the child was made", chainOnly: true);
    }

    [Fact]
    public async Task Parent_of_another_size_breaks_the_chain()
    {
        (string basePath, _) = await CreateBaseAsync();
        string child = await CreateChildAsync(basePath);
        RawVhdx.SetMetadataItem(basePath, RawVhdx.VirtualDiskSize, BitConverter.GetBytes((ulong)DiskLength * 2));

        await AssertRejectedAsync<BlockDriverException>(child, $"has {DiskLength * 2} bytes in 512-byte sectors", chainOnly: true);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Chain_that_loops_is_rejected(bool self)
    {
        // base ← a ← b, then a's locator is rewritten to name b (a two-file loop) or a itself.
        (string basePath, _) = await CreateBaseAsync();
        string a = await CreateChildAsync(basePath, "a.vhdx");
        string b = await CreateChildAsync(a, "b.vhdx");
        string target = self ? a : b;
        Guid targetGuid;
        await using (VhdxFile file = VhdxFile.Open(target, readOnly: true))
        {
            targetGuid = file.DataWriteGuid;
        }

        await RewriteMetadataAsync(a, m => m with { ParentLocator = ParentLocator.ForParent(a, target, targetGuid) });

        await AssertRejectedAsync<BlockDriverException>(self ? a : b, "(a loop)", chainOnly: true);
    }

    [Fact]
    public async Task Parent_that_is_not_a_regular_file_is_refused_without_hanging()
    {
        // A locator can name anything; a FIFO would block open(2) until some writer appears.
        (string basePath, _) = await CreateBaseAsync();
        string child = await CreateChildAsync(basePath);
        File.Delete(basePath);
        using (Process mkfifo = Process.Start("mkfifo", basePath))
        {
            await mkfifo.WaitForExitAsync();
            Assert.Equal(0, mkfifo.ExitCode);
        }

        Task<BlockDriverException> open = Task.Run(() => CaptureAsync(() => VhdxDisk.Open(child, new VhdxOpenOptions { ReadOnly = true }), "VhdxDisk.Open"));
        if (await Task.WhenAny(open, Task.Delay(TimeSpan.FromSeconds(5))) != open)
        {
            // Connect a writer so that the blocked open returns and the thread is not lost, then report the hang.
            using (File.OpenHandle(basePath, FileMode.Open, FileAccess.Write))
            {
            }

            Assert.Fail($"VhdxDisk.Open blocked on the FIFO {basePath} named as the parent instead of refusing it.");
        }

        BlockDriverException e = await open;
        Assert.Contains(basePath, e.Message, StringComparison.Ordinal);
    }

    // ---- Log -------------------------------------------------------------------------------------------------

    [Theory]
    [InlineData(1L << 30, true)]
    [InlineData(0x7FFF_FFFF_FFF0_0000, true)] // offset + length overflows a long
    [InlineData(1L << 30, false)] // an empty log still has to be somewhere a writer can put entries
    [InlineData(0x7FFF_FFFF_FFF0_0000, false)]
    public async Task Log_outside_the_file_is_rejected(long logOffset, bool pending)
    {
        (string path, _) = await CreateBaseAsync();
        Guid logGuid = pending ? Guid.NewGuid() : Guid.Empty;
        foreach (int slot in new[] { 0, 1 })
        {
            RawVhdx.EditHeader(path, slot, h =>
            {
                logGuid.TryWriteBytes(h.AsSpan(48, 16));
                BinaryPrimitives.WriteUInt64LittleEndian(h.AsSpan(72), (ulong)logOffset);
            });
        }

        await AssertRejectedAsync<VhdxFormatException>(path, "lies past the end of the");
    }

    [Theory]
    [InlineData("LastFileOffset of 1 PiB", 1L << 50, -1L)]
    [InlineData("update at 4 PiB", -1L, 1L << 52)]
    [InlineData("LastFileOffset of 32 TiB", 1L << 45, -1L)] // a size a VHDX may have, past what ext4 can hold
    [InlineData("update just below 32 TiB", 1L << 45, (1L << 45) - 4096)]
    public async Task Log_entry_with_absurd_offsets_fails_cleanly(string what, long lastFileOffset, long updateOffset)
    {
        (string path, byte[] content) = await CreateBaseAsync();
        long fileLength = new FileInfo(path).Length;
        (long batOffset, _) = RawVhdx.Region(path, RawVhdx.BatRegion);
        byte[] batPage = RawVhdx.Read(path, batOffset, 4096);
        WritePendingLog(path, lastFileOffset < 0 ? fileLength : lastFileOffset, [(updateOffset < 0 ? batOffset : updateOffset, batPage)]);
        string before = RawVhdx.Sha256(path);

        // Read-only, the replay stays in memory and the updates are harmless; writable, the replay must either
        // work or be refused with a typed error, never escape as a raw I/O error.
        foreach (bool readOnly in new[] { true, false })
        {
            try
            {
                await using VhdxDisk disk = VhdxDisk.Open(path, new VhdxOpenOptions { ReadOnly = readOnly });
                await AssertContentAsync(disk, content);
            }
            catch (BlockDriverException e)
            {
                Assert.Contains("log", e.Message, StringComparison.OrdinalIgnoreCase);
            }
            catch (Exception e)
            {
                Assert.Fail($"{what}, {(readOnly ? "read-only" : "writable")} open: {e.GetType().Name} escaped instead of a BlockDriverException: {e}");
            }

            if (readOnly)
            {
                Assert.Equal(before, RawVhdx.Sha256(path));
            }
        }
    }

    [Fact]
    public async Task Log_flooded_with_giant_overlapping_entries_is_refused_quickly()
    {
        // Every 4 KiB of the log starts an entry header that claims the whole log: checksumming them all would
        // cost (log length / 4 KiB) × log length. The search must give up with a typed error, not spin.
        // A 64 MiB log at the end of the file: 16384 headers × 64 MiB each would be a petabyte of checksumming.
        (string path, _) = await CreateBaseAsync();
        var logGuid = Guid.NewGuid();
        long logOffset = new FileInfo(path).Length;
        const int logLength = 64 * MiB;
        foreach (int slot in new[] { 0, 1 })
        {
            RawVhdx.EditHeader(path, slot, h =>
            {
                logGuid.TryWriteBytes(h.AsSpan(48, 16));
                BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(68), logLength);
                BinaryPrimitives.WriteUInt64LittleEndian(h.AsSpan(72), (ulong)logOffset);
            });
        }

        byte[] log = new byte[logLength];
        for (int position = 0; position < logLength; position += 4096)
        {
            Span<byte> entry = log.AsSpan(position, 64);
            "loge"u8.CopyTo(entry);
            BinaryPrimitives.WriteUInt32LittleEndian(entry[8..], (uint)logLength);
            BinaryPrimitives.WriteUInt64LittleEndian(entry[16..], 1);
            logGuid.TryWriteBytes(entry.Slice(32, 16));
        }

        RawVhdx.Write(path, logOffset, log);
        string before = RawVhdx.Sha256(path);
        var error = await Assert.ThrowsAsync<VhdxFormatException>(() =>
            Task.Run(() => VhdxFile.Open(path, readOnly: true)).WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Contains("log", error.Message, StringComparison.Ordinal);
        Assert.Equal(before, RawVhdx.Sha256(path));
    }

    // ---- Truncation ------------------------------------------------------------------------------------------

    [Theory]
    [InlineData(0L, "shorter than the 1 MiB header section")]
    [InlineData(512L * 1024, "shorter than the 1 MiB header section")]
    [InlineData(3L * MiB / 2, "past the end of the")] // cuts off the metadata region
    [InlineData((3L * MiB) + (32 * 1024), "past the end of the")] // in the middle of the BAT region
    [InlineData((5L * MiB) + (MiB / 2), "lies outside the")] // in the middle of the payload blocks
    public async Task Truncated_file_is_rejected(long length, string problem)
    {
        (string path, _) = await CreateBaseAsync();
        Assert.Equal(4L * MiB, (long)(RawVhdx.ReadBatEntry(path, 0) & ~0xF_FFFFUL));
        Assert.Equal(6L * MiB, (long)(RawVhdx.ReadBatEntry(path, 2) & ~0xF_FFFFUL));
        RawVhdx.Truncate(path, length);

        await AssertRejectedAsync<VhdxFormatException>(path, problem);
    }

    [Fact]
    public async Task Cut_off_part_of_a_block_is_never_allocated_to_another_block()
    {
        // 2 MiB blocks: block 0 at [4, 6) MiB and block 1 at [6, 8) MiB; cutting the file at 7 MiB leaves block 1
        // half in the file. Opening may refuse the file; if it opens, a new block must not land on block 1's tail.
        string path = _dir.File("cut.vhdx");
        VhdxFile.CreateDynamic(path, DiskLength, new VhdxCreateOptions { BlockSize = 2 * MiB });
        byte[] data = Random(1, 4 * MiB);
        await using (VhdxDisk disk = VhdxDisk.Open(path))
        {
            await disk.WriteAsync(0, data);
        }

        Assert.Equal(6L * MiB, (long)(RawVhdx.ReadBatEntry(path, 1) & ~0xF_FFFFUL));
        RawVhdx.Truncate(path, 7L * MiB);

        byte[] block1 = new byte[2 * MiB];
        byte[] block2 = Random(2, 2 * MiB);
        try
        {
            await using VhdxDisk disk = VhdxDisk.Open(path);
            await disk.ReadAsync(2 * MiB, block1);
            await disk.WriteAsync(4 * MiB, block2);
        }
        catch (VhdxFormatException)
        {
            return;
        }

        await using (VhdxDisk disk = VhdxDisk.Open(path, new VhdxOpenOptions { ReadOnly = true }))
        {
            Assert.True(block1.AsSpan(0, MiB).SequenceEqual(data.AsSpan(2 * MiB, MiB)), "block 1's head changed");
            await AssertRangeAsync(disk, 2 * MiB, block1, "block 1 (half cut off) after a new block was allocated");
            await AssertRangeAsync(disk, 4 * MiB, block2, "the new block 2");
        }
    }

    [Fact]
    public async Task Short_last_block_is_never_allocated_over()
    {
        // 3 MiB in 2 MiB blocks: block 1 holds only 1 MiB of the disk, and a file may end right after that part
        // (older qemu wrote such files). A new block must still go after block 1's whole 2 MiB.
        string path = _dir.File("short-last.vhdx");
        VhdxFile.CreateDynamic(path, 3L * MiB, new VhdxCreateOptions { BlockSize = 2 * MiB });
        byte[] tail = Random(4, MiB);
        await using (VhdxDisk disk = VhdxDisk.Open(path))
        {
            await disk.WriteAsync(2L * MiB, tail);
        }

        Assert.Equal(4L * MiB, (long)(RawVhdx.ReadBatEntry(path, 1) & ~0xF_FFFFUL));
        RawVhdx.Truncate(path, 5L * MiB);

        byte[] head = Random(5, 2 * MiB);
        try
        {
            await using VhdxDisk disk = VhdxDisk.Open(path);
            await disk.WriteAsync(0, head);
        }
        catch (VhdxFormatException)
        {
            return;
        }

        await using (VhdxDisk disk = VhdxDisk.Open(path, new VhdxOpenOptions { ReadOnly = true }))
        {
            await AssertRangeAsync(disk, 0, head, "the new block 0");
            await AssertRangeAsync(disk, 2L * MiB, tail, "the short last block");
        }
    }

    [Fact]
    public async Task Log_past_the_end_of_the_file_is_never_allocated_over()
    {
        // The log is moved to [6, 7) MiB of a 4 MiB file: space a writer would otherwise hand to payload blocks.
        // Opening may refuse the file; if it opens, writes must read back after the log has been used.
        string path = _dir.File("log-past-end.vhdx");
        VhdxFile.CreateDynamic(path, DiskLength, new VhdxCreateOptions { BlockSize = BlockSize });
        Assert.Equal(4L * MiB, new FileInfo(path).Length);
        foreach (int slot in new[] { 0, 1 })
        {
            RawVhdx.EditHeader(path, slot, h => BinaryPrimitives.WriteUInt64LittleEndian(h.AsSpan(72), 6UL * MiB));
        }

        byte[] data = Random(3, 4 * MiB);
        try
        {
            await using VhdxDisk disk = VhdxDisk.Open(path);
            await disk.WriteAsync(0, data);
        }
        catch (VhdxFormatException)
        {
            return;
        }

        await using (VhdxDisk disk = VhdxDisk.Open(path, new VhdxOpenOptions { ReadOnly = true }))
        {
            await AssertRangeAsync(disk, 0, data, "data written while the log lay past the end of the file");
        }
    }

    // ---- Helpers ---------------------------------------------------------------------------------------------

    // Opens read-only then writable, through VhdxFile (unless only the chain is wrong) and VhdxDisk; each must
    // throw exactly TException with the kind and problem given, and leave every file in the directory as it was.
    private async Task<BlockDriverException> AssertRejectedAsync<TException>(string path, string problem,
        ErrorKind kind = ErrorKind.Corrupt, string? parentRoot = null, bool chainOnly = false)
        where TException : BlockDriverException
    {
        string before = RawVhdx.HashDirectory(_dir.FullName);
        BlockDriverException? last = null;
        foreach (bool readOnly in new[] { true, false })
        {
            string mode = readOnly ? "read-only" : "writable";
            var opens = new List<(string What, Func<IAsyncDisposable> Open)>();
            if (!chainOnly)
            {
                opens.Add(($"VhdxFile.Open ({mode})", () => VhdxFile.Open(path, readOnly)));
            }

            opens.Add(($"VhdxDisk.Open ({mode})", () => VhdxDisk.Open(path, new VhdxOpenOptions { ReadOnly = readOnly, ParentRoot = parentRoot })));
            foreach ((string what, Func<IAsyncDisposable> open) in opens)
            {
                BlockDriverException e = await CaptureAsync(open, what);
                Assert.True(e.GetType() == typeof(TException), $"{what}: expected {typeof(TException).Name}, got {e.GetType().Name}: {e.Message}");
                Assert.True(e.Kind == kind, $"{what}: expected kind {kind}, got {e.Kind}: {e.Message}");
                Assert.True(e.Message.Contains(problem, StringComparison.Ordinal), $"{what}: the message does not name the problem \"{problem}\": {e.Message}");
                if (e is VhdxFormatException format)
                {
                    Assert.True(Path.IsPathRooted(format.FilePath) || File.Exists(format.FilePath), $"{what}: no file named in {e.Message}");
                    Assert.Contains(format.FilePath, e.Message, StringComparison.Ordinal);
                }

                Assert.True(before == RawVhdx.HashDirectory(_dir.FullName), $"{what} changed a file although it refused to open: before\n{before}\nafter\n{RawVhdx.HashDirectory(_dir.FullName)}");
                last = e;
            }
        }

        return last!;
    }

    private static async Task<BlockDriverException> CaptureAsync(Func<IAsyncDisposable> open, string what)
    {
        IAsyncDisposable opened;
        try
        {
            opened = open();
        }
        catch (BlockDriverException e)
        {
            return e;
        }
        catch (Exception e)
        {
            Assert.Fail($"{what} threw {e.GetType().Name} instead of a BlockDriverException: {e}");
            throw;
        }

        await opened.DisposeAsync();
        Assert.Fail($"{what} accepted the file.");
        throw new InvalidOperationException();
    }

    // An 8 MiB dynamic file in 1 MiB blocks. Blocks 0, 1 and 2 hold data (allocated in order at 4, 5 and 6 MiB,
    // after the BAT region that ends at 4 MiB); block 4 was written (at 7 MiB) and then zeroed, so it is ZERO; the
    // rest is NOT_PRESENT. The file is 8 MiB long.
    private async Task<(string Path, byte[] Content)> CreateBaseAsync(string name = "base.vhdx")
    {
        string path = _dir.File(name);
        VhdxFile.CreateDynamic(path, DiskLength, new VhdxCreateOptions { BlockSize = BlockSize });
        byte[] content = new byte[DiskLength];
        await using (VhdxDisk disk = VhdxDisk.Open(path))
        {
            foreach (int block in new[] { 0, 1, 2 })
            {
                byte[] data = Random(block + 10, 64 * 1024);
                long offset = ((long)block * BlockSize) + (block * 4096);
                data.CopyTo(content.AsSpan((int)offset));
                await disk.WriteAsync(offset, data);
            }

            await disk.WriteAsync(4L * BlockSize, Random(14, 4096));
            await disk.WriteZeroesAsync(4L * BlockSize, BlockSize);
        }

        return (path, content);
    }

    // A child over parentPath; unless told not to, with one 4 KiB write into block 3 (PARTIALLY_PRESENT, so the
    // chunk gets a sector bitmap).
    private async Task<string> CreateChildAsync(string parentPath, string name = "child.vhdx", bool write = true)
    {
        string path = _dir.File(name);
        await VhdxFile.CreateDifferencingAsync(path, parentPath);
        if (write)
        {
            await using VhdxDisk disk = VhdxDisk.Open(path);
            await disk.WriteAsync((3L * BlockSize) + 8192, Random(99, 4096));
        }

        return path;
    }

    private static void AddRegion(string path, Guid id, long offset, bool required) =>
        RawVhdx.EditRegionTables(path, t =>
        {
            uint count = BinaryPrimitives.ReadUInt32LittleEndian(t.AsSpan(8));
            int at = 16 + ((int)count * 32);
            id.TryWriteBytes(t.AsSpan(at, 16));
            BinaryPrimitives.WriteUInt64LittleEndian(t.AsSpan(at + 16), (ulong)offset);
            BinaryPrimitives.WriteUInt32LittleEndian(t.AsSpan(at + 24), MiB);
            BinaryPrimitives.WriteUInt32LittleEndian(t.AsSpan(at + 28), required ? 1u : 0u);
            BinaryPrimitives.WriteUInt32LittleEndian(t.AsSpan(8), count + 1);
        });

    private static void AddMetadataItem(string path, Guid id, uint flags) =>
        RawVhdx.EditMetadata(path, region =>
        {
            int count = BinaryPrimitives.ReadUInt16LittleEndian(region.AsSpan(10));
            Span<byte> entry = region.AsSpan(32 + (count * 32), 32);
            id.TryWriteBytes(entry[..16]);
            BinaryPrimitives.WriteUInt32LittleEndian(entry[16..], 128 * 1024);
            BinaryPrimitives.WriteUInt32LittleEndian(entry[20..], 16);
            BinaryPrimitives.WriteUInt32LittleEndian(entry[24..], flags);
            region.AsSpan(128 * 1024, 16).Fill(0x5A);
            BinaryPrimitives.WriteUInt16LittleEndian(region.AsSpan(10), (ushort)(count + 1));
        });

    // Rewrites the whole metadata region from a changed copy of what the library parsed.
    private static async Task RewriteMetadataAsync(string path, Func<VhdxMetadata, VhdxMetadata> change)
    {
        VhdxMetadata metadata;
        await using (VhdxFile file = VhdxFile.Open(path, readOnly: true))
        {
            metadata = file.Metadata;
        }

        VhdxMetadata changed = change(metadata);
        RawVhdx.EditMetadata(path, region => changed.Write(region));
    }

    private static Task RewriteLocatorAsync(string path, Action<Dictionary<string, string>> change) =>
        RewriteMetadataAsync(path, m =>
        {
            var entries = new Dictionary<string, string>(m.ParentLocator!.Entries, StringComparer.Ordinal);
            change(entries);
            return m with { ParentLocator = new ParentLocator(entries) };
        });

    // Makes the file look as if a writer crashed after logging `pages` (MS-VHDX 2.3): both headers get a new
    // LogGuid and one entry (sequence 1, tail 0) goes to the start of the log.
    private static void WritePendingLog(string path, long lastFileOffset, IReadOnlyList<(long FileOffset, byte[] Page)> pages)
    {
        var logGuid = Guid.NewGuid();
        long fileLength = new FileInfo(path).Length;
        byte[] entry = VhdxLog.BuildEntry(logGuid, 1, 0, fileLength, lastFileOffset, pages);
        long logOffset = (long)BinaryPrimitives.ReadUInt64LittleEndian(RawVhdx.Read(path, RawVhdx.Header1Offset + 72, 8));
        RawVhdx.Write(path, logOffset, entry);
        foreach (int slot in new[] { 0, 1 })
        {
            RawVhdx.EditHeader(path, slot, h => logGuid.TryWriteBytes(h.AsSpan(48, 16)));
        }
    }

    private static async Task AssertContentAsync(VhdxDisk disk, byte[] content)
    {
        Assert.Equal(content.Length, disk.Length);
        await AssertRangeAsync(disk, 0, content, "disk content");
    }

    private static async Task AssertRangeAsync(VhdxDisk disk, long offset, byte[] expected, string what)
    {
        byte[] actual = new byte[expected.Length];
        await disk.ReadAsync(offset, actual);
        int mismatch = actual.AsSpan().CommonPrefixLength(expected);
        Assert.True(mismatch == expected.Length, $"{what}: first difference at virtual offset {offset + mismatch}");
    }

    private static byte[] Random(int seed, int length)
    {
        byte[] bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }
}
