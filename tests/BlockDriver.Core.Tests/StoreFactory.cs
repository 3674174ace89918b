using BlockDriver.Abstractions;

namespace BlockDriver.Core.Tests;

/// <summary>Builds container layers the shared suites run against: a store in a temporary directory holding an
/// empty sealed base of the requested size, <c>depth - 1</c> empty sealed layers over it, and a writable container
/// layer on top, opened through <see cref="LayerStore.OpenLayerAsync"/> (so every unwritten sector resolves through
/// the whole chain).</summary>
internal static class StoreFactory
{
    public static async Task<(LayerStore Store, string Container)> CreateChainAsync(string root, long capacity, int depth)
    {
        LayerStore store = await LayerStore.OpenAsync(root, create: true);
        Layer parent = await store.CreateAsync(new LayerSpec { Id = "l0", Capacity = capacity });
        parent = await store.SealAsync(parent.Id);
        for (int level = 1; level < depth; level++)
        {
            Layer layer = await store.CreateAsync(new LayerSpec { Id = $"l{level}", Parent = parent.Id, Kind = LayerKind.Image });
            parent = await store.SealAsync(layer.Id);
        }

        Layer container = await store.CreateAsync(new LayerSpec { Id = "c", Parent = parent.Id });
        return (store, container.Id);
    }

    /// <summary>Reads a whole device.</summary>
    public static async Task<byte[]> ReadAllAsync(IBlockDevice device)
    {
        byte[] data = new byte[device.Length];
        await device.ReadAsync(0, data);
        return data;
    }
}
