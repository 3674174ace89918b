namespace BlockDriver.Vhdx;

/// <summary>Parameters of a new VHDX file.</summary>
public sealed record VhdxCreateOptions
{
    /// <summary>Payload block size in bytes: a power of two from 1 MiB to 256 MiB. Default 2 MiB.
    /// For a differencing file, null means "the parent's".</summary>
    public int? BlockSize { get; init; }

    /// <summary>Logical sector size: 512 (default; what qemu, Hyper-V and DiscUtils use) or 4096.</summary>
    public int LogicalSectorSize { get; init; } = 512;

    /// <summary>Physical sector size reported to guests: 4096 (default) or 512.</summary>
    public int PhysicalSectorSize { get; init; } = 4096;

    /// <summary>Text stored in the file type identifier (diagnostic only).</summary>
    public string Creator { get; init; } = "BlockDriver";
}
