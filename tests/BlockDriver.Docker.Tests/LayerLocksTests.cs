namespace BlockDriver.Docker.Tests;

public sealed class LayerLocksTests
{
    [Fact]
    public async Task Operations_sharing_a_layer_wait_for_each_other_and_others_do_not()
    {
        var locks = new LayerLocks();
        IDisposable first = await locks.AcquireAsync(["b", "a", null], CancellationToken.None);
        Task<IDisposable> sharing = locks.AcquireAsync(["c", "a"], CancellationToken.None);
        Task<IDisposable> other = locks.AcquireAsync(["c", "d"], CancellationToken.None);
        await Task.Delay(100);
        Assert.False(sharing.IsCompleted);

        // "c" is free while the sharing operation waits for "a" (ids are taken in order: a before c).
        IDisposable otherHeld = await other.WaitAsync(TimeSpan.FromSeconds(5));
        first.Dispose();
        otherHeld.Dispose();
        using IDisposable sharingHeld = await sharing.WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task A_cancelled_wait_leaves_the_lock_usable()
    {
        var locks = new LayerLocks();
        IDisposable held = await locks.AcquireAsync(["a"], CancellationToken.None);
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => locks.AcquireAsync(["a"], cancel.Token));
        held.Dispose();
        using IDisposable again = await locks.AcquireAsync(["a", "a"], CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5));
    }
}
