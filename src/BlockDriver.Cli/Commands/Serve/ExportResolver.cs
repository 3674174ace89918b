using BlockDriver.Abstractions;
using BlockDriver.Core;
using BlockDriver.Core.Images;
using BlockDriver.Nbd;
using BlockDriver.Vhdx;

namespace BlockDriver.Cli.Commands.Serve;

/// <summary>Turns EXPORT arguments of <c>serve nbd</c> and <c>attach-nbd</c> into open devices and their NBD
/// exports. An EXPORT that names an existing file is a VHDX file (the chain it heads); anything else is a layer id of
/// the store (opened the first time one is needed). A sealed layer is always exported read-only; a writable one is
/// opened for writing (one writer at a time: a layer open elsewhere is refused with the holder's pid) unless
/// --read-only. The export's name is the argument as given. Disposing closes the devices and the store.</summary>
internal sealed class ExportResolver(string root) : IAsyncDisposable
{
    private readonly List<ResolvedExport> _opened = [];
    private LayerStore? _store;

    /// <summary>Everything opened so far, in order.</summary>
    public IReadOnlyList<ResolvedExport> Exports => _opened;

    /// <summary>Opens every export in order (the same name twice is refused).</summary>
    public async Task<IReadOnlyList<ResolvedExport>> OpenAllAsync(IEnumerable<string> exports, bool readOnly, CancellationToken ct)
    {
        foreach (string export in exports)
        {
            if (_opened.Any(e => e.Export.Name == export))
            {
                throw new BlockDriverException(ErrorKind.InvalidArgument, $"{export}: given twice.");
            }

            _opened.Add(await OpenAsync(export, readOnly, ct).ConfigureAwait(false));
        }

        return _opened;
    }

    /// <summary>Flushes and closes the devices (dispose flushes writable ones), then the store.</summary>
    public async ValueTask DisposeAsync()
    {
        foreach (ResolvedExport export in _opened)
        {
            await export.Device.DisposeAsync().ConfigureAwait(false);
        }

        _opened.Clear();
        if (_store is not null)
        {
            await _store.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task<ResolvedExport> OpenAsync(string export, bool readOnly, CancellationToken ct)
    {
        if (File.Exists(export))
        {
            string path = Path.GetFullPath(export);
            if (ImageFiles.Detect(path) != ImageFormat.Vhdx)
            {
                throw new BlockDriverException(ErrorKind.InvalidArgument, $"{export}: not a VHDX file; NBD exports are VHDX files or layer ids.");
            }

            // Parents only from the file's own directory, as the img commands do by default (Cli/Images/ParentDirOption.cs).
            VhdxDisk disk = VhdxDisk.Open(path, new VhdxOpenOptions { ReadOnly = readOnly, ParentRoot = Path.GetDirectoryName(path) });
            var nbd = new NbdExport(export, disk)
            {
                Description = $"VHDX {(disk.Files.Count > 1 ? $"chain of {disk.Files.Count} files" : "file")} {path}",
                ReadOnly = readOnly,
            };
            return new ResolvedExport(nbd, disk);
        }

        _store ??= await LayerStore.OpenAsync(root, create: false, ct).ConfigureAwait(false);
        Core.Layer layer = _store.Find(export)
            ?? throw new BlockDriverException(ErrorKind.NotFound, $"{export}: neither a VHDX file nor a layer of the store at {_store.Root}.");
        bool writable = !readOnly && !layer.IsSealed;
        LayerDevice device = await _store.OpenLayerAsync(layer.Id, writable, ct).ConfigureAwait(false);
        return new ResolvedExport(new NbdExport(export, device)
        {
            Description = $"{layer.Kind.ToString().ToLowerInvariant()} layer {layer.Id} ({layer.State.ToString().ToLowerInvariant()})",
            ReadOnly = !writable,
        }, device);
    }
}
