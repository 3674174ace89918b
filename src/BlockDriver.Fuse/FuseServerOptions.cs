using Microsoft.Extensions.Logging;

namespace BlockDriver.Fuse;

/// <summary>How <see cref="FuseDeviceServer.MountAsync"/> mounts and serves. Defaults suit a loop device on top:
/// 1 MiB requests, direct I/O (no page cache on the FUSE file), several readers.</summary>
public sealed record FuseServerOptions
{
    /// <summary>Threads reading requests, each on its own clone of the /dev/fuse fd (FUSE_DEV_IOC_CLONE).
    /// 1 to 64; default: the processor count clamped to 4..8.</summary>
    /// <remarks>Over a VHDX, a reader serves a request of up to 64 KiB to the end itself (a 4 KiB write is one
    /// pwrite(2) into the image file), and that pwrite may wait on the image file's inode lock, on dirty-page
    /// throttling or behind a commit's fsync while the kernel holds up to <see cref="MaxBackground"/> requests. Four
    /// readers keep the queue moving while some wait, even on 2 cores: in paired runs on a loaded 2-core machine,
    /// random 4 KiB writes through the loop device went from a median of 150 to 218 MB/s (2 → 4 readers); on a quiet
    /// machine, no change either way, and no change in CPU per request.</remarks>
    public int WorkerThreads { get; init; } = Math.Clamp(Environment.ProcessorCount, 4, 8);

    /// <summary>Largest READ/WRITE payload negotiated, in bytes: a multiple of 4096 from 4 KiB to 16 MiB. The kernel
    /// further limits requests to max_pages_limit pages (256 = 1 MiB by default). Default 1 MiB.</summary>
    public int MaxWrite { get; init; } = 1 << 20;

    /// <summary>Asynchronous requests the kernel may have outstanding (init_out.max_background). Default 64.</summary>
    public int MaxBackground { get; init; } = 64;

    /// <summary>Open files with FOPEN_DIRECT_IO so that the FUSE file has no page cache of its own (the loop device
    /// or the application above caches). Default true.</summary>
    public bool DirectIo { get; init; } = true;

    /// <summary>How long the kernel may cache names and attributes. The files' sizes never change, so this only
    /// bounds how long a removed name stays visible to a cached lookup. Default 1 s.</summary>
    public TimeSpan AttributeTimeout { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>How long mounting waits for the kernel's INIT request. Default 10 s.</summary>
    public TimeSpan InitTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long teardown waits for the readers to see the connection end before aborting it. Default 5 s.</summary>
    public TimeSpan TeardownTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The file-system subtype: the mount shows as <c>fuse.{Subtype}</c>. Default "blockdriver".</summary>
    public string Subtype { get; init; } = "blockdriver";

    /// <summary>Unmount (lazily, aborting the connection if a file is still held) when the process exits normally
    /// (AppDomain.ProcessExit), so no mount outlives it. Default true.</summary>
    public bool UnmountOnProcessExit { get; init; } = true;

    /// <summary>Also unmount on SIGTERM, then let the signal terminate the process. For a standalone server; a host
    /// that shuts down gracefully on SIGTERM (the Generic Host does) must leave this off and dispose the server after
    /// unmounting what sits on top, or the file systems above would lose their device first. Default false.</summary>
    public bool UnmountOnSigterm { get; init; }

    /// <summary>Where lifecycle events (Information), refused requests (Debug) and failures (Warning) go.</summary>
    public ILogger? Logger { get; init; }

    /// <summary>A directory on the file system that holds the devices' data (a layer store's root). When a write
    /// fails for want of space there, the warning names that file system's free bytes. Null: the warning names none.</summary>
    public string? StorageDirectory { get; init; }

    internal void Validate()
    {
        if (WorkerThreads is < 1 or > 64)
        {
            throw new ArgumentOutOfRangeException(nameof(WorkerThreads), WorkerThreads, "Between 1 and 64 worker threads.");
        }

        if (MaxWrite < 4096 || MaxWrite > 16 << 20 || MaxWrite % 4096 != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxWrite), MaxWrite, "A multiple of 4096 from 4 KiB to 16 MiB.");
        }

        if (MaxBackground is < 1 or > ushort.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxBackground), MaxBackground, "Between 1 and 65535.");
        }

        if (string.IsNullOrEmpty(Subtype) || Subtype.Any(c => !char.IsAsciiLetterOrDigit(c) && c != '-' && c != '_'))
        {
            throw new ArgumentException($"Subtype \"{Subtype}\" must be ASCII letters, digits, '-' or '_'.", nameof(Subtype));
        }
    }
}
