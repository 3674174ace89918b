using System.Text.Json;
using System.Text.Json.Serialization;

namespace BlockDriver.Daemon;

/// <summary>The admin API's JSON shapes (camelCase), shared by the daemon and the CLI's client.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, WriteIndented = false)]
[JsonSerializable(typeof(MountJson))]
[JsonSerializable(typeof(List<MountJson>))]
[JsonSerializable(typeof(MountRequest))]
[JsonSerializable(typeof(DaemonStatus))]
[JsonSerializable(typeof(ErrorJson))]
[JsonSerializable(typeof(List<ChangeJson>))]
[JsonSerializable(typeof(LayerContentJson))]
public sealed partial class AdminJsonContext : JsonSerializerContext;
