using BlockDriver.Abstractions;
using Xunit.Abstractions;

namespace BlockDriver.Core.Tests;

/// <summary>The model-based random test on container layers opened through the store; reopening goes through the
/// store again (close, then OpenLayerAsync), so what persisted is what reads back.</summary>
public abstract class ContainerLayerModelTests(ITestOutputHelper output) : BlockDeviceModelTests(output)
{
    private readonly List<LayerStore> _stores = [];

    protected abstract int Depth { get; }

    protected override async Task<IBlockDevice> CreateDeviceAsync(long length, int sectorSize)
    {
        (LayerStore store, string container) = await StoreFactory.CreateChainAsync(Temp.GetFilePath($"store{_stores.Count}"), length, Depth);
        _stores.Add(store);
        return await store.OpenLayerAsync(container, writable: true);
    }

    protected override async Task<IBlockDevice> ReopenAsync(IBlockDevice device)
    {
        var layer = (LayerDevice)device;
        await layer.DisposeAsync();
        return await _stores[^1].OpenLayerAsync(layer.Layer.Id, writable: true);
    }

    protected override async Task CleanupAsync()
    {
        foreach (LayerStore store in _stores)
        {
            await store.DisposeAsync();
        }
    }
}

public sealed class ContainerLayerDepth1ModelTests(ITestOutputHelper output) : ContainerLayerModelTests(output)
{
    protected override int Depth => 1;
}

public sealed class ContainerLayerDepth8ModelTests(ITestOutputHelper output) : ContainerLayerModelTests(output)
{
    protected override int Depth => 8;
}
