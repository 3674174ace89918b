using BlockDriver.Abstractions;
using BlockDriver.Fuse;

namespace BlockDriver.Mount;

/// <summary>An open layer made a kernel block device: its open layer (a <see cref="BlockDriver.Core.LayerDevice"/>, or a
/// <see cref="SwitchableLayerDevice"/> over one for a device-only attachment), served as FUSE file
/// <see cref="Name"/>, and a loop device on that file. <see cref="ReleaseAsync"/> undoes it in reverse; a step that
/// fails leaves the later ones for a retry.</summary>
internal sealed class LayerAttachment(IBlockDevice device, FuseDeviceServer server, string name, LoopDevice loop)
{
    // How long the FUSE file removal waits for the kernel to close the file after the loop device let go.
    private static readonly TimeSpan CloseWait = TimeSpan.FromSeconds(10);
    private bool _fileRemoved;
    private bool _deviceDisposed;

    public IBlockDevice Device { get; } = device;

    public string Name { get; } = name;

    public string FuseFile { get; } = server.GetFilePath(name);

    public LoopDevice Loop { get; } = loop;

    /// <summary>Detaches the loop device (waiting for the kernel to let go of the file), removes the FUSE file, and
    /// disposes the layer device, which flushes it and releases its leases.</summary>
    public async Task ReleaseAsync()
    {
        await KernelCall.RunAsync(Loop.Detach).ConfigureAwait(false);
        if (!_fileRemoved)
        {
            await server.RemoveFileAsync(Name, CloseWait).ConfigureAwait(false);
            _fileRemoved = true;
        }

        if (!_deviceDisposed)
        {
            _deviceDisposed = true;
            await Device.DisposeAsync().ConfigureAwait(false);
        }
    }
}
