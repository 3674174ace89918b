namespace BlockDriver.Cli.Output;

/// <summary>One finding of <c>store check --json</c>.</summary>
/// <param name="Subject">Layer id or file name.</param>
/// <param name="Finding">What was wrong.</param>
/// <param name="Action">What was done.</param>
internal sealed record ReconcileJson(string Subject, string Finding, string Action);
