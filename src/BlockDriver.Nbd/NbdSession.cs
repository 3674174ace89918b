using BlockDriver.Abstractions;

namespace BlockDriver.Nbd;

/// <summary>What the handshake settled for one connection's transmission phase.</summary>
/// <param name="Export">The export chosen by NBD_OPT_GO or NBD_OPT_EXPORT_NAME.</param>
/// <param name="Device">The export's shared device.</param>
/// <param name="Flags">The transmission flags sent to the client.</param>
/// <param name="StructuredReplies">NBD_OPT_STRUCTURED_REPLY was acknowledged: reads get structured replies.</param>
/// <param name="AllocationContextId">The id chosen for base:allocation by NBD_OPT_SET_META_CONTEXT for this
/// export, or 0 when no context is selected (BLOCK_STATUS then fails with EINVAL).</param>
internal sealed record NbdSession(
    ExportHandle Export,
    IBlockDevice Device,
    NbdTransmissionFlags Flags,
    bool StructuredReplies,
    uint AllocationContextId);
