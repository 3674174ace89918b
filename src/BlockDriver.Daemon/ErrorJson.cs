namespace BlockDriver.Daemon;

/// <summary>The body of every failed admin API request.</summary>
/// <param name="Error">What went wrong, one line.</param>
public sealed record ErrorJson(string Error);
