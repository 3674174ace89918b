namespace BlockDriver.Docker.Json;

/// <summary>The answer to Changes.</summary>
/// <param name="Changes">Parents before children, names in ordinal order.</param>
public sealed record ChangesResponse(IReadOnlyList<ChangeJson> Changes);
