namespace BlockDriver.Bench;

/// <summary>One timed run: how many requests completed in how long.</summary>
internal readonly record struct Sample(long Requests, TimeSpan Elapsed);
