namespace BlockDriver.Nbd;

/// <summary>Where a <see cref="ConnectionBudget"/> took bytes from.</summary>
internal enum BudgetSource
{
    /// <summary>The connection's own reserve.</summary>
    Reserve,

    /// <summary>The server's shared pool.</summary>
    Shared,
}
