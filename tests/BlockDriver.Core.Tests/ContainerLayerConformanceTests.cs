using BlockDriver.Abstractions;

namespace BlockDriver.Core.Tests;

/// <summary>The block-device conformance suite on container layers opened through the store, over chains of
/// several depths.</summary>
public abstract class ContainerLayerConformanceTests : BlockDeviceConformanceTests
{
    private readonly List<LayerStore> _stores = [];

    protected abstract int Depth { get; }

    protected override async Task<IBlockDevice> CreateDeviceAsync(long length, int sectorSize)
    {
        (LayerStore store, string container) = await StoreFactory.CreateChainAsync(Temp.GetFilePath($"store{_stores.Count}"), length, Depth);
        _stores.Add(store);
        return await store.OpenLayerAsync(container, writable: true);
    }

    protected override async Task<IBlockDevice> CreateReadOnlyDeviceAsync(long length, int sectorSize)
    {
        (LayerStore store, string container) = await StoreFactory.CreateChainAsync(Temp.GetFilePath($"store{_stores.Count}"), length, Depth);
        _stores.Add(store);
        await using (LayerDevice writer = await store.OpenLayerAsync(container, writable: true))
        {
            await writer.WriteAsync(0, TestPatterns.Bytes(7, 4 << 20));
        }

        await store.SealAsync(container);
        return await store.OpenLayerAsync(container, writable: false);
    }

    protected override async Task CleanupAsync()
    {
        foreach (LayerStore store in _stores)
        {
            await store.DisposeAsync();
        }
    }
}

public sealed class ContainerLayerDepth1ConformanceTests : ContainerLayerConformanceTests
{
    protected override int Depth => 1;
}

public sealed class ContainerLayerDepth4ConformanceTests : ContainerLayerConformanceTests
{
    protected override int Depth => 4;
}

public sealed class ContainerLayerDepth16ConformanceTests : ContainerLayerConformanceTests
{
    protected override int Depth => 16;
}
