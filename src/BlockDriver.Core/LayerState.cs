namespace BlockDriver.Core;

/// <summary>Whether a layer's bytes can still change.</summary>
public enum LayerState
{
    /// <summary>Open for writing by one process at a time; has no children.</summary>
    Writable,

    /// <summary>Never written again; may be a parent.</summary>
    Sealed,
}
