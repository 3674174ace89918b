namespace BlockDriver.Mount.Tests;

/// <summary>A test class with a fresh <see cref="MounterTestStore"/> per test (<see cref="F"/>), disposed after it
/// whatever the outcome; <see cref="WithBaseFilesystem"/> also makes the store's base file system layer first.</summary>
public abstract class MounterTestBase(bool withBaseFilesystem) : IAsyncLifetime
{
    private MounterTestStore? _fixture;

    /// <summary>Whether the base file system layer is made before each test.</summary>
    protected bool WithBaseFilesystem { get; } = withBaseFilesystem;

    /// <summary>The test's store, mounter and scratch directory.</summary>
    private protected MounterTestStore F => _fixture ?? throw new InvalidOperationException("Not initialised.");

    public async Task InitializeAsync()
    {
        _fixture = await MounterTestStore.CreateAsync();
        if (WithBaseFilesystem)
        {
            await BaseFilesystem.EnsureAsync(F.Store, F.Mounter, MounterTestStore.Capacity);
        }
    }

    public async Task DisposeAsync()
    {
        if (_fixture is not null)
        {
            await _fixture.DisposeAsync();
        }
    }
}
