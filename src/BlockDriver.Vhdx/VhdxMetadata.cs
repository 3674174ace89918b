using System.Buffers.Binary;

namespace BlockDriver.Vhdx;

/// <summary>The parsed metadata region (MS-VHDX 2.6): the table at the region start and the known items.
/// Immutable: this implementation writes metadata once, at creation.</summary>
internal sealed record VhdxMetadata
{
    // "metadata" read as a little-endian u64.
    private const ulong Signature = 0x6174_6164_6174_656D;
    private const int TableHeaderSize = 32;
    private const int EntrySize = 32;
    private const uint FlagIsUser = 1;
    private const uint FlagIsVirtualDisk = 2;
    private const uint FlagIsRequired = 4;

    public required int BlockSize { get; init; }

    /// <summary>File Parameters bit 0: a fixed file, blocks never leave FULLY_PRESENT.</summary>
    public bool LeaveBlockAllocated { get; init; }

    /// <summary>File Parameters bit 1: a differencing file.</summary>
    public bool HasParent { get; init; }

    public required long VirtualDiskSize { get; init; }

    public required Guid VirtualDiskId { get; init; }

    public required int LogicalSectorSize { get; init; }

    public required int PhysicalSectorSize { get; init; }

    public ParentLocator? ParentLocator { get; init; }

    /// <summary>Parses the region and checks every rule of MS-VHDX 2.6.1–2.6.2 that matters to a reader: item
    /// bounds, required items present, no unknown required item, sizes in range.</summary>
    public static VhdxMetadata Parse(ReadOnlySpan<byte> region, string path, long regionOffset)
    {
        const string Structure = "metadata table";
        if (BinaryPrimitives.ReadUInt64LittleEndian(region) != Signature)
        {
            throw new VhdxFormatException(path, Structure, regionOffset, "bad signature (expected \"metadata\").");
        }

        int count = BinaryPrimitives.ReadUInt16LittleEndian(region[10..]);
        if (count > VhdxConstants.MaxMetadataEntries)
        {
            throw new VhdxFormatException(path, Structure, regionOffset, $"{count} entries exceeds the limit of {VhdxConstants.MaxMetadataEntries}.");
        }

        var items = new Dictionary<Guid, (int Offset, int Length)>();
        var used = new List<(int Start, int End)>();
        for (int i = 0; i < count; i++)
        {
            ReadOnlySpan<byte> e = region.Slice(TableHeaderSize + (i * EntrySize), EntrySize);
            var id = new Guid(e[..16]);
            uint offset = BinaryPrimitives.ReadUInt32LittleEndian(e[16..]);
            uint length = BinaryPrimitives.ReadUInt32LittleEndian(e[20..]);
            uint flags = BinaryPrimitives.ReadUInt32LittleEndian(e[24..]);
            long entryOffset = regionOffset + TableHeaderSize + (i * EntrySize);
            if ((flags & FlagIsUser) != 0)
            {
                // User items are opaque to us; only a required one we cannot honour is fatal.
                if ((flags & FlagIsRequired) != 0)
                {
                    throw new VhdxFormatException(path, "metadata entry", entryOffset, $"unknown required user item {id}.");
                }

                continue;
            }

            if (length > VhdxConstants.MaxMetadataItemLength || (length > 0 && (offset < VhdxConstants.MetadataTableSize || offset + (long)length > region.Length)))
            {
                throw new VhdxFormatException(path, "metadata entry", entryOffset, $"item {id} at {offset} of {length} bytes lies outside the metadata region.");
            }

            if (length == 0 && offset != 0)
            {
                throw new VhdxFormatException(path, "metadata entry", entryOffset, $"empty item {id} has a non-zero offset.");
            }

            bool known = id == VhdxGuids.FileParameters || id == VhdxGuids.VirtualDiskSize || id == VhdxGuids.VirtualDiskId
                         || id == VhdxGuids.LogicalSectorSize || id == VhdxGuids.PhysicalSectorSize || id == VhdxGuids.ParentLocator;
            if (!known)
            {
                if ((flags & FlagIsRequired) != 0)
                {
                    throw new VhdxFormatException(path, "metadata entry", entryOffset, $"unknown required item {id}.");
                }

                continue;
            }

            if (!items.TryAdd(id, ((int)offset, (int)length)))
            {
                throw new VhdxFormatException(path, "metadata entry", entryOffset, $"duplicate item {id}.");
            }

            if (length > 0)
            {
                foreach ((int start, int end) in used)
                {
                    if (offset < end && start < offset + length)
                    {
                        throw new VhdxFormatException(path, "metadata entry", entryOffset, $"item {id} overlaps another item.");
                    }
                }

                used.Add(((int)offset, (int)(offset + length)));
            }
        }

        ReadOnlySpan<byte> Item(Dictionary<Guid, (int Offset, int Length)> all, ReadOnlySpan<byte> r, Guid id, string name, int size)
        {
            if (!all.TryGetValue(id, out (int Offset, int Length) at))
            {
                throw new VhdxFormatException(path, Structure, regionOffset, $"required item {name} is missing.");
            }

            if (at.Length < size)
            {
                throw new VhdxFormatException(path, name, regionOffset + at.Offset, $"item is {at.Length} bytes, expected {size}.");
            }

            return r.Slice(at.Offset, at.Length);
        }

        ReadOnlySpan<byte> parameters = Item(items, region, VhdxGuids.FileParameters, "File Parameters", 8);
        int blockSize = checked((int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(parameters), int.MaxValue));
        uint parameterFlags = BinaryPrimitives.ReadUInt32LittleEndian(parameters[4..]);
        long virtualSize = (long)Math.Min(BinaryPrimitives.ReadUInt64LittleEndian(Item(items, region, VhdxGuids.VirtualDiskSize, "Virtual Disk Size", 8)), long.MaxValue);
        var diskId = new Guid(Item(items, region, VhdxGuids.VirtualDiskId, "Virtual Disk ID", 16)[..16]);
        int logical = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(Item(items, region, VhdxGuids.LogicalSectorSize, "Logical Sector Size", 4)), int.MaxValue);
        int physical = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(Item(items, region, VhdxGuids.PhysicalSectorSize, "Physical Sector Size", 4)), int.MaxValue);

        if (blockSize < VhdxConstants.MinBlockSize || blockSize > VhdxConstants.MaxBlockSize || (blockSize & (blockSize - 1)) != 0)
        {
            throw new VhdxFormatException(path, "File Parameters", regionOffset, $"block size {blockSize} is not a power of two between 1 MiB and 256 MiB.");
        }

        if (logical is not (512 or 4096) || physical is not (512 or 4096))
        {
            throw new VhdxFormatException(path, "Logical/Physical Sector Size", regionOffset, $"sector sizes {logical}/{physical} must each be 512 or 4096.");
        }

        if (virtualSize <= 0 || virtualSize > VhdxConstants.MaxVirtualDiskSize || virtualSize % logical != 0)
        {
            throw new VhdxFormatException(path, "Virtual Disk Size", regionOffset, $"{virtualSize} bytes is not a positive multiple of {logical} up to 64 TiB.");
        }

        bool hasParent = (parameterFlags & 2) != 0;
        ParentLocator? locator = null;
        if (items.TryGetValue(VhdxGuids.ParentLocator, out (int Offset, int Length) locatorAt))
        {
            locator = ParentLocator.Parse(region.Slice(locatorAt.Offset, locatorAt.Length), path, regionOffset + locatorAt.Offset);
        }

        if (hasParent != (locator is not null))
        {
            throw new VhdxFormatException(path, "File Parameters", regionOffset,
                hasParent ? "HasParent is set but there is no parent locator." : "a parent locator is present but HasParent is clear.");
        }

        return new VhdxMetadata
        {
            BlockSize = blockSize,
            LeaveBlockAllocated = (parameterFlags & 1) != 0 && !hasParent,
            HasParent = hasParent,
            VirtualDiskSize = virtualSize,
            VirtualDiskId = diskId,
            LogicalSectorSize = logical,
            PhysicalSectorSize = physical,
            ParentLocator = locator,
        };
    }

    /// <summary>Serializes the region (table plus items packed from 64 KiB in the order DiscUtils and qemu use)
    /// into a zeroed buffer of the region's length.</summary>
    public void Write(Span<byte> region)
    {
        region.Clear();
        var items = new List<(Guid Id, uint Flags, byte[] Data)>
        {
            (VhdxGuids.FileParameters, FlagIsRequired, FileParametersBytes()),
            (VhdxGuids.VirtualDiskSize, FlagIsRequired | FlagIsVirtualDisk, BitConverter.GetBytes((ulong)VirtualDiskSize)),
            (VhdxGuids.VirtualDiskId, FlagIsRequired | FlagIsVirtualDisk, VirtualDiskId.ToByteArray()),
            (VhdxGuids.LogicalSectorSize, FlagIsRequired | FlagIsVirtualDisk, BitConverter.GetBytes((uint)LogicalSectorSize)),
            (VhdxGuids.PhysicalSectorSize, FlagIsRequired | FlagIsVirtualDisk, BitConverter.GetBytes((uint)PhysicalSectorSize)),
        };
        if (ParentLocator is not null)
        {
            items.Add((VhdxGuids.ParentLocator, FlagIsRequired, ParentLocator.ToBytes()));
        }

        BinaryPrimitives.WriteUInt64LittleEndian(region, Signature);
        BinaryPrimitives.WriteUInt16LittleEndian(region[10..], (ushort)items.Count);
        int position = VhdxConstants.MetadataTableSize;
        for (int i = 0; i < items.Count; i++)
        {
            Span<byte> e = region.Slice(TableHeaderSize + (i * EntrySize), EntrySize);
            items[i].Id.TryWriteBytes(e[..16]);
            BinaryPrimitives.WriteUInt32LittleEndian(e[16..], (uint)position);
            BinaryPrimitives.WriteUInt32LittleEndian(e[20..], (uint)items[i].Data.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(e[24..], items[i].Flags);
            items[i].Data.CopyTo(region[position..]);
            position += items[i].Data.Length;
        }
    }

    private byte[] FileParametersBytes()
    {
        byte[] bytes = new byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, (uint)BlockSize);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(4), (LeaveBlockAllocated ? 1u : 0u) | (HasParent ? 2u : 0u));
        return bytes;
    }
}
