namespace BlockDriver.Docker.Json;

/// <summary>The answer of a call that succeeded and returns nothing: <c>{}</c>.</summary>
public sealed record EmptyResponse;
