namespace BlockDriver.Mount.Tests;

/// <summary>Every test class of this assembly runs in this collection, one at a time, and <see cref="LeakCheck"/>
/// verifies at the end that no mount or loop device refers to the tests' directories any more.</summary>
[CollectionDefinition(Name)]
public sealed class MountTestCollection : ICollectionFixture<LeakCheck>
{
    public const string Name = "mount";

    /// <summary>Every temporary directory of these tests starts with /tmp/blockdriver-{TempPrefix}-.</summary>
    public const string TempPrefix = "mounttest";
}
