namespace BlockDriver.Core;

/// <summary>A journal entry: an operation on layer files that was started and not finished. Written in the same
/// transaction as (or before) the first change it covers and deleted in the transaction that finishes it, so a
/// crash leaves exactly the operations reconciliation must roll back or forward.</summary>
/// <param name="Sequence">The row's key.</param>
/// <param name="Operation">create, seal, remove, snapshot, revert, merge, flatten or import.</param>
/// <param name="Layer">The layer the operation is about.</param>
/// <param name="Argument">Operation-specific: the new id of a seal, the snapshot id, the merged parent's id.</param>
/// <param name="Pid">The process that started it.</param>
/// <param name="Started">When.</param>
public sealed record PendingOperation(long Sequence, string Operation, string Layer, string? Argument, int Pid, DateTimeOffset Started);
