using BlockDriver.Abstractions;

namespace BlockDriver.Nbd;

/// <summary>What the server offers under one export name: a description, the device (or how to open it) and
/// whether clients may write. The server knows nothing else about where the bytes live.</summary>
/// <remarks>The device is opened once, on the first NBD_OPT_INFO/GO/EXPORT_NAME naming the export, and that one
/// instance serves every connection to the export until the server is disposed. That is what makes
/// NBD_FLAG_CAN_MULTI_CONN true: a flush on any connection flushes the shared device, which makes every
/// completed write durable (the <see cref="IBlockDevice.FlushAsync"/> contract).</remarks>
public sealed class NbdExport
{
    /// <summary>An export whose device is opened on first use and disposed by the server.</summary>
    /// <param name="name">The export name clients ask for; at most 4096 UTF-8 bytes.</param>
    /// <param name="open">Opens the device; called at most once at a time, again only if it failed.</param>
    public NbdExport(string name, Func<CancellationToken, ValueTask<IBlockDevice>> open)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(open);
        if (System.Text.Encoding.UTF8.GetByteCount(name) > NbdLimits.MaxStringLength)
        {
            throw new ArgumentOutOfRangeException(nameof(name), "An NBD export name is at most 4096 bytes.");
        }

        Name = name;
        Open = open;
        OwnsDevice = true;
    }

    /// <summary>An export of an already open device, which the caller keeps and disposes.</summary>
    public NbdExport(string name, IBlockDevice device)
        : this(name, _ => ValueTask.FromResult(device ?? throw new ArgumentNullException(nameof(device))))
    {
        OwnsDevice = false;
    }

    /// <summary>The export name.</summary>
    public string Name { get; }

    /// <summary>Free text shown by <c>nbdinfo</c> and NBD_OPT_LIST; empty for none.</summary>
    public string Description { get; init; } = "";

    /// <summary>Refuse writes, trims and write-zeroes (EPERM) even if the device would take them.</summary>
    public bool ReadOnly { get; init; }

    /// <summary>Opens the device.</summary>
    public Func<CancellationToken, ValueTask<IBlockDevice>> Open { get; }

    /// <summary>True when the server flushes and disposes the device when it stops.</summary>
    public bool OwnsDevice { get; init; }
}
