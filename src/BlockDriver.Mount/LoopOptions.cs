namespace BlockDriver.Mount;

/// <summary>How <see cref="LoopDevice.Attach"/> configures the loop device.</summary>
public sealed record LoopOptions
{
    /// <summary>Attach read-only (LO_FLAGS_READ_ONLY): writes to the device fail with EROFS/EPERM.</summary>
    public bool ReadOnly { get; init; }

    /// <summary>Direct I/O from the loop driver to the backing file (LO_FLAGS_DIRECT_IO), so that the loop device's
    /// page cache and the backing file's do not hold the same data twice. Default true.</summary>
    public bool DirectIo { get; init; } = true;

    /// <summary>When <see cref="DirectIo"/> is asked for and the kernel refuses it for this backing file, attach with
    /// buffered I/O instead of failing. Default false: the refusal is an error that says so.</summary>
    public bool AllowBufferedFallback { get; init; }

    /// <summary>The loop device's logical block size in bytes: a power of two from 512 to 4096. Default 4096.</summary>
    public int LogicalBlockSize { get; init; } = 4096;

    /// <summary>LO_FLAGS_AUTOCLEAR: the kernel unbinds the device when its last opener closes it, so a crashed process
    /// leaks no loop device (ours is held open for as long as the <see cref="LoopDevice"/> lives). Default true.</summary>
    public bool AutoClear { get; init; } = true;

    /// <summary>How long <see cref="LoopDevice.Detach"/> waits for the kernel to let go of the backing file.
    /// Default 10 s.</summary>
    public TimeSpan DetachTimeout { get; init; } = TimeSpan.FromSeconds(10);
}
