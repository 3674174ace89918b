namespace BlockDriver.Core;

/// <summary>One thing reconciliation found and what it did about it.</summary>
/// <param name="Subject">The layer id or file concerned.</param>
/// <param name="Finding">What was wrong, e.g. "unfinished merge (pid 1234)".</param>
/// <param name="Action">What was done: "rolled back", "rolled forward", "quarantined to PATH", "reported".</param>
public sealed record ReconcileAction(string Subject, string Finding, string Action)
{
    /// <inheritdoc/>
    public override string ToString() => $"{Subject}: {Finding}: {Action}";
}
