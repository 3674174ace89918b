namespace BlockDriver.Docker.Json;

/// <summary>The body of a failed call: dockerd returns <see cref="Err"/> as the call's error.</summary>
/// <param name="Err">What went wrong, one line.</param>
public sealed record ErrResponse(string Err);
