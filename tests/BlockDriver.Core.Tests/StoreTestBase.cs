using System.Security.Cryptography;
using BlockDriver.Abstractions;

namespace BlockDriver.Core.Tests;

/// <summary>A fresh store in a temporary directory per test, closed and deleted afterwards whether or not the test
/// passed, plus helpers that write and read layers through the store.</summary>
public abstract class StoreTestBase : IAsyncLifetime
{
    protected const long Mib = 1 << 20;
    protected const long Capacity = 64 * Mib;

    protected TempDirectory Temp { get; } = new("store");

    protected string Root => Temp.GetFilePath("root");

    protected LayerStore Store { get; private set; } = null!;

    public virtual async Task InitializeAsync() => Store = await LayerStore.OpenAsync(Root, create: true);

    public async Task DisposeAsync()
    {
        try
        {
            await Store.DisposeAsync();
        }
        finally
        {
            Temp.Dispose();
        }
    }

    /// <summary>Closes the store and opens it again (reconciling).</summary>
    protected async Task ReopenStoreAsync()
    {
        await Store.DisposeAsync();
        Store = await LayerStore.OpenAsync(Root);
    }

    /// <summary>Writes a seeded pattern of <paramref name="length"/> bytes at <paramref name="offset"/>.</summary>
    protected async Task<byte[]> WriteAsync(string id, long offset, int length, int seed)
    {
        byte[] data = TestPatterns.Bytes(seed, length);
        await using LayerDevice device = await Store.OpenLayerAsync(id, writable: true);
        await device.WriteAsync(offset, data);
        await device.FlushAsync();
        return data;
    }

    /// <summary>The whole visible content of a layer.</summary>
    protected async Task<byte[]> ContentAsync(string id)
    {
        await using LayerDevice device = await Store.OpenLayerAsync(id, writable: false);
        return await StoreFactory.ReadAllAsync(device);
    }

    /// <summary>A base layer holding a pattern in its first <paramref name="length"/> bytes, sealed.</summary>
    protected async Task<Layer> SealedBaseAsync(string id = "base", int length = 8 << 20, int seed = 1)
    {
        await Store.CreateAsync(new LayerSpec { Id = id, Capacity = Capacity });
        await WriteAsync(id, 0, length, seed);
        return await Store.SealAsync(id);
    }

    protected static string Sha256(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));

    protected static async Task<BlockDriverException> ThrowsAsync(ErrorKind kind, Func<Task> action, string messagePart)
    {
        BlockDriverException e = await Assert.ThrowsAsync<BlockDriverException>(action);
        Assert.Equal(kind, e.Kind);
        Assert.Contains(messagePart, e.Message, StringComparison.Ordinal);
        return e;
    }
}
