namespace BlockDriver.Core;

/// <summary>What one writable layer costs.</summary>
/// <param name="Id">The writable layer.</param>
/// <param name="Size">Its own allocated bytes.</param>
/// <param name="Exclusive">Its own bytes plus those of ancestors no other container reads: what removing it (and
/// the layers only it needs) would free.</param>
/// <param name="Shared">Bytes of its ancestors that other containers read too.</param>
public sealed record ContainerUsage(string Id, long Size, long Exclusive, long Shared);
