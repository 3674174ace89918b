namespace BlockDriver.Nbd;

/// <summary>One transmission-phase request header (28-byte compact form, proto.md "Request message").</summary>
/// <param name="Flags">Command flags (<see cref="NbdCommandFlags"/>).</param>
/// <param name="Type">Command type (<see cref="NbdCommand"/>).</param>
/// <param name="Cookie">Opaque value echoed in the reply.</param>
/// <param name="Offset">Byte offset, as sent (unsigned).</param>
/// <param name="Length">Byte length, as sent.</param>
internal readonly record struct NbdRequest(ushort Flags, ushort Type, ulong Cookie, ulong Offset, uint Length)
{
    public const int Size = 28;

    public bool Has(ushort flag) => (Flags & flag) != 0;
}
