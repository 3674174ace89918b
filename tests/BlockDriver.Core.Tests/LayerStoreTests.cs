using BlockDriver.Abstractions;
using BlockDriver.Interop;
using BlockDriver.Vhdx;

namespace BlockDriver.Core.Tests;

public sealed class LayerStoreTests : StoreTestBase
{
    [Fact]
    public async Task A_base_layer_is_a_blank_writable_dynamic_disk_of_the_requested_size()
    {
        Layer layer = await Store.CreateAsync(new LayerSpec { Id = "disk", Capacity = Capacity, Labels = new Dictionary<string, string> { ["a"] = "b" } });

        Assert.Equal(("disk", null, LayerKind.Image, LayerState.Writable, Capacity), (layer.Id, layer.Parent, layer.Kind, layer.State, layer.Capacity));
        Assert.Equal("b", Store.Get("disk").Labels["a"]);
        Assert.Equal(Path.Combine(Root, "layers", "disk.vhdx"), layer.Path);
        Assert.All(await ContentAsync("disk"), b => Assert.Equal(0, b));
        await using VhdxFile file = VhdxFile.Open(layer.Path, readOnly: true);
        Assert.False(file.HasParent);
    }

    [Fact]
    public async Task The_default_capacity_is_10_GiB_and_ids_are_generated()
    {
        Layer layer = await Store.CreateAsync(new LayerSpec());
        Assert.Equal(10L << 30, layer.Capacity);
        Assert.Matches("^[0-9a-f]{32}$", layer.Id);
    }

    [Fact]
    public async Task A_child_reads_its_parent_and_keeps_its_writes_to_itself()
    {
        await SealedBaseAsync();
        Layer child = await Store.CreateAsync(new LayerSpec { Id = "c", Parent = "base" });
        Assert.Equal(LayerKind.Container, child.Kind);
        byte[] baseContent = await ContentAsync("base");
        byte[] written = await WriteAsync("c", 3 * Mib + 512, 5120, seed: 9);

        byte[] expected = (byte[])baseContent.Clone();
        written.CopyTo(expected, 3 * Mib + 512);
        Assert.Equal(expected, await ContentAsync("c"));
        Assert.Equal(baseContent, await ContentAsync("base"));
    }

    [Fact]
    public async Task Only_sealed_layers_can_be_parents_and_sealed_layers_refuse_writes()
    {
        await Store.CreateAsync(new LayerSpec { Id = "w", Capacity = Capacity });
        await ThrowsAsync(ErrorKind.InvalidArgument, () => Store.CreateAsync(new LayerSpec { Parent = "w" }), "only sealed layers can be parents");
        await Store.SealAsync("w");
        await ThrowsAsync(ErrorKind.ReadOnly, () => Store.OpenLayerAsync("w", writable: true), "sealed");
        await using LayerDevice reader = await Store.OpenLayerAsync("w", writable: false);
        Assert.True(reader.IsReadOnly);
        await Assert.ThrowsAsync<BlockDriverException>(async () => await reader.WriteAsync(0, new byte[512]));
    }

    [Fact]
    public async Task A_sealed_layer_file_never_changes_while_its_children_are_used_heavily()
    {
        Layer image = await SealedBaseAsync(length: 16 << 20);
        string before = Sha256(image.Path);
        var random = new Random(5);
        foreach (string id in new[] { "c1", "c2" })
        {
            await Store.CreateAsync(new LayerSpec { Id = id, Parent = "base" });
            await using LayerDevice device = await Store.OpenLayerAsync(id, writable: true);
            for (int i = 0; i < 300; i++)
            {
                long offset = random.NextInt64(0, Capacity / 512 - 64) * 512;
                switch (i % 4)
                {
                    case 0 or 1:
                        await device.WriteAsync(offset, TestPatterns.Bytes(i, 512 * random.Next(1, 64)));
                        break;
                    case 2:
                        await device.TrimAsync(offset, Math.Min(512L * random.Next(1, 4096), Capacity - offset));
                        break;
                    default:
                        await device.WriteZeroesAsync(offset, 512 * 8);
                        break;
                }
            }

            await device.FlushAsync();
        }

        await Store.SnapshotAsync("c1", "c1-snap");
        await WriteAsync("c1", 0, 1 << 20, 3);
        await Store.RevertAsync("c1", "c1-snap");
        await Store.MergeAsync("c1");
        await Store.FlattenAsync("c2");
        await Store.ExportAsync("c1", Temp.GetFilePath("out.raw"), ExportFormat.Raw);
        await Store.RemoveAsync("c2");

        Assert.Equal(before, Sha256(image.Path));
    }

    [Fact]
    public async Task Seal_under_a_new_id_renames_the_layer_and_its_file()
    {
        await Store.CreateAsync(new LayerSpec { Id = "work", Capacity = Capacity, Labels = new Dictionary<string, string> { ["k"] = "v" } });
        byte[] data = await WriteAsync("work", 0, 4096, 2);

        Layer sealedLayer = await Store.SealAsync("work", "image-1");

        Assert.Null(Store.Find("work"));
        Assert.False(File.Exists(Path.Combine(Root, "layers", "work.vhdx")));
        Assert.Equal((LayerState.Sealed, LayerKind.Image, "v"), (sealedLayer.State, sealedLayer.Kind, sealedLayer.Labels["k"]));
        Assert.Equal(data, (await ContentAsync("image-1"))[..4096]);
        await ThrowsAsync(ErrorKind.InvalidArgument, () => Store.SealAsync("image-1"), "already sealed");
    }

    [Fact]
    public async Task Remove_is_refused_while_a_layer_has_children_or_is_open_and_frees_the_space_after()
    {
        await SealedBaseAsync();
        await Store.CreateAsync(new LayerSpec { Id = "c", Parent = "base" });
        await WriteAsync("c", 0, 8 << 20, 4);

        await ThrowsAsync(ErrorKind.InUse, () => Store.RemoveAsync("base"), "child layer (c)");
        await using (LayerDevice open = await Store.OpenLayerAsync("c", writable: true))
        {
            await ThrowsAsync(ErrorKind.InUse, () => Store.RemoveAsync("c"), $"in use by pid {Environment.ProcessId}");
        }

        long before = Store.GetStoreUsage().Allocated;
        long size = Store.GetUsage("c").Size;
        await Store.RemoveAsync("c");
        long after = Store.GetStoreUsage().Allocated;

        Assert.False(File.Exists(Path.Combine(Root, "layers", "c.vhdx")));
        Assert.True(before - after >= size - (64 << 10), $"removing c ({size} bytes) freed only {before - after}");
        await Store.RemoveAsync("base");
        Assert.Empty(Store.List());
    }

    [Fact]
    public async Task Containers_on_one_image_share_one_chain_index_closed_with_the_last_of_them()
    {
        await SealedBaseAsync();
        await Store.CreateAsync(new LayerSpec { Id = "img", Parent = "base", Kind = LayerKind.Image });
        await WriteAsync("img", 0, 1 << 20, 5);
        await Store.SealAsync("img");
        byte[] image = await ContentAsync("img");
        var devices = new List<LayerDevice>();
        for (int i = 0; i < 5; i++)
        {
            await Store.CloneAsync("img", $"c{i}");
            devices.Add(await Store.OpenLayerAsync($"c{i}", writable: true));
        }

        Assert.Equal(1, Store.OpenChainCount);
        for (int i = 0; i < devices.Count; i++)
        {
            await devices[i].WriteAsync(i * 4096, TestPatterns.Bytes(100 + i, 4096));
        }

        for (int i = 0; i < devices.Count; i++)
        {
            byte[] expected = (byte[])image.Clone();
            TestPatterns.Bytes(100 + i, 4096).CopyTo(expected, i * 4096);
            Assert.Equal(expected, await StoreFactory.ReadAllAsync(devices[i]));
        }

        foreach (LayerDevice device in devices)
        {
            await device.DisposeAsync();
        }

        Assert.Equal(0, Store.OpenChainCount);
    }

    [Fact]
    public async Task A_writable_layer_has_one_writer_and_readers_exclude_it()
    {
        await Store.CreateAsync(new LayerSpec { Id = "w", Capacity = Capacity });
        await using (LayerDevice writer = await Store.OpenLayerAsync("w", writable: true))
        {
            await ThrowsAsync(ErrorKind.InUse, () => Store.OpenLayerAsync("w", writable: true), "in use by pid");
            await ThrowsAsync(ErrorKind.InUse, () => Store.OpenLayerAsync("w", writable: false), "in use by pid");
        }

        await using LayerDevice reader1 = await Store.OpenLayerAsync("w", writable: false);
        await using LayerDevice reader2 = await Store.OpenLayerAsync("w", writable: false);
        await ThrowsAsync(ErrorKind.InUse, () => Store.OpenLayerAsync("w", writable: true), "in use by pid");
    }

    [Fact]
    public async Task Snapshot_freezes_the_state_and_revert_goes_back_to_it()
    {
        await SealedBaseAsync();
        await Store.CreateAsync(new LayerSpec { Id = "vm", Parent = "base" });
        await WriteAsync("vm", Mib, 64 << 10, 11);
        byte[] atSnapshot = await ContentAsync("vm");

        Layer snapshot = await Store.SnapshotAsync("vm", "vm-1");
        Assert.Equal((LayerKind.Snapshot, LayerState.Sealed, "base"), (snapshot.Kind, snapshot.State, snapshot.Parent));
        Assert.Equal("vm-1", Store.Get("vm").Parent);
        Assert.Equal(LayerState.Writable, Store.Get("vm").State);
        Assert.True(Store.GetUsage("vm").Size < 1 * Mib, "the continuing layer starts empty");

        await WriteAsync("vm", Mib, 4096, 12);
        Assert.NotEqual(atSnapshot, await ContentAsync("vm"));
        Assert.Equal(atSnapshot, await ContentAsync("vm-1"));

        await Store.RevertAsync("vm", "vm-1");
        Assert.Equal(atSnapshot, await ContentAsync("vm"));

        Layer clone = await Store.CloneAsync("vm-1", "vm-clone");
        Assert.Equal((LayerKind.Container, "vm-1"), (clone.Kind, clone.Parent));
        Assert.Equal(atSnapshot, await ContentAsync("vm-clone"));
    }

    [Fact]
    public async Task Revert_can_go_back_past_several_snapshots()
    {
        await Store.CreateAsync(new LayerSpec { Id = "vm", Capacity = Capacity });
        await WriteAsync("vm", 0, 4096, 1);
        byte[] first = await ContentAsync("vm");
        await Store.SnapshotAsync("vm", "s1");
        await WriteAsync("vm", 0, 4096, 2);
        await Store.SnapshotAsync("vm", "s2");
        await WriteAsync("vm", 0, 4096, 3);

        await Store.RevertAsync("vm", "s1");

        Assert.Equal(first, await ContentAsync("vm"));
        Assert.Equal("s1", Store.Get("vm").Parent);
        await ThrowsAsync(ErrorKind.InvalidArgument, () => Store.RevertAsync("s2", "s1"), "only a writable layer");
    }

    [Fact]
    public async Task Merge_folds_the_parent_into_the_layer_and_keeps_its_content_and_children()
    {
        await SealedBaseAsync();
        await Store.CreateAsync(new LayerSpec { Id = "mid", Parent = "base", Kind = LayerKind.Image });
        await WriteAsync("mid", 2 * Mib, 1 << 20, 21);
        await Store.SealAsync("mid");
        await Store.CreateAsync(new LayerSpec { Id = "top", Parent = "mid", Kind = LayerKind.Image });
        await WriteAsync("top", 2 * Mib + 4096, 8192, 22);
        await Store.SealAsync("top");
        await Store.CreateAsync(new LayerSpec { Id = "c", Parent = "top" });
        await WriteAsync("c", 0, 512, 23);
        byte[] topContent = await ContentAsync("top");
        byte[] containerContent = await ContentAsync("c");

        Layer merged = await Store.MergeAsync("top");

        Assert.Equal(("base", LayerState.Sealed), (merged.Parent, merged.State));
        Assert.Null(Store.Find("mid"));
        Assert.False(File.Exists(Path.Combine(Root, "layers", "mid.vhdx")));
        Assert.Equal(topContent, await ContentAsync("top"));
        Assert.Equal(containerContent, await ContentAsync("c"));
    }

    [Fact]
    public async Task Merge_is_refused_for_a_base_and_when_the_parent_has_other_children()
    {
        await SealedBaseAsync();
        await Store.CloneAsync("base", "a");
        await Store.CloneAsync("base", "b");
        await ThrowsAsync(ErrorKind.InvalidArgument, () => Store.MergeAsync("base"), "base layer");
        await ThrowsAsync(ErrorKind.InUse, () => Store.MergeAsync("a"), "other children (b)");
    }

    [Fact]
    public async Task Merge_of_a_writable_layer_into_its_snapshot_keeps_it_writable()
    {
        await Store.CreateAsync(new LayerSpec { Id = "vm", Capacity = Capacity });
        await WriteAsync("vm", 0, 1 << 20, 1);
        await Store.SnapshotAsync("vm", "s");
        await WriteAsync("vm", 512, 512, 2);
        byte[] content = await ContentAsync("vm");

        Layer merged = await Store.MergeAsync("vm");

        Assert.Equal((null, LayerState.Writable), (merged.Parent, merged.State));
        Assert.Null(Store.Find("s"));
        Assert.Equal(content, await ContentAsync("vm"));
        await WriteAsync("vm", 0, 512, 3);
    }

    [Fact]
    public async Task Flatten_makes_a_standalone_base_with_the_same_content_and_children_still_open()
    {
        await SealedBaseAsync();
        await Store.CreateAsync(new LayerSpec { Id = "l1", Parent = "base", Kind = LayerKind.Image });
        await WriteAsync("l1", 5 * Mib, 4096, 31);
        await using (LayerDevice device = await Store.OpenLayerAsync("l1", writable: true))
        {
            await device.WriteZeroesAsync(0, Mib);
        }

        await Store.SealAsync("l1");
        await Store.CloneAsync("l1", "c");
        byte[] content = await ContentAsync("l1");
        byte[] childContent = await ContentAsync("c");

        Layer flat = await Store.FlattenAsync("l1");

        Assert.Null(flat.Parent);
        await using (VhdxFile file = VhdxFile.Open(flat.Path, readOnly: true))
        {
            Assert.False(file.HasParent);
        }

        Assert.Equal(content, await ContentAsync("l1"));
        Assert.Equal(childContent, await ContentAsync("c"));
        await Store.RemoveAsync("c");
        await Store.RemoveAsync("base");
        Assert.Equal(content, await ContentAsync("l1"));
        await ThrowsAsync(ErrorKind.InvalidArgument, () => Store.FlattenAsync("l1"), "already a base");
    }

    [Theory]
    [InlineData(ExportFormat.Raw, "out.raw")]
    [InlineData(ExportFormat.Vhdx, "out.vhdx")]
    public async Task Export_writes_the_visible_content_sparsely(ExportFormat format, string name)
    {
        await SealedBaseAsync();
        await Store.CloneAsync("base", "c");
        await WriteAsync("c", 40 * Mib, 4096, 41);
        byte[] content = await ContentAsync("c");
        string path = Temp.GetFilePath(name);

        await Store.ExportAsync("c", path, format);

        await using IBlockDevice exported = format == ExportFormat.Raw ? FileBlockDevice.Open(path, readOnly: true) : VhdxDisk.Open(path, new VhdxOpenOptions { ReadOnly = true });
        Assert.Equal(content, await StoreFactory.ReadAllAsync(exported));
        Assert.True(SparseFile.AllocatedBytes(path) < 16 * Mib, $"export allocated {SparseFile.AllocatedBytes(path)} bytes for ~8 MiB of data");
    }

    [Fact]
    public async Task Import_of_a_raw_file_makes_a_base_and_over_a_parent_stores_only_the_difference()
    {
        string raw = Temp.GetFilePath("disk.raw");
        byte[] content = new byte[Capacity];
        TestPatterns.Bytes(51, 12 << 20).CopyTo(content, 0);
        await File.WriteAllBytesAsync(raw, content);

        Layer imported = await Store.ImportAsync(raw, new LayerSpec { Id = "imported" });
        Assert.Equal((null, Capacity, LayerState.Writable), (imported.Parent, imported.Capacity, imported.State));
        Assert.Equal(content, await ContentAsync("imported"));
        await Store.SealAsync("imported");

        TestPatterns.Bytes(52, 4096).CopyTo(content, 6 * Mib);
        await File.WriteAllBytesAsync(raw, content);
        Layer delta = await Store.ImportAsync(raw, new LayerSpec { Id = "delta", Parent = "imported" });

        Assert.Equal(content, await ContentAsync("delta"));
        Assert.True(Store.GetUsage("delta").Size < 2 * Mib, $"a 4 KiB difference took {Store.GetUsage("delta").Size} bytes");
        Assert.Equal("imported", delta.Parent);
    }

    [Fact]
    public async Task Import_over_a_parent_of_another_size_is_refused_and_leaves_nothing()
    {
        await SealedBaseAsync();
        string raw = Temp.GetFilePath("small.raw");
        await File.WriteAllBytesAsync(raw, new byte[Mib]);
        await ThrowsAsync(ErrorKind.InvalidArgument, () => Store.ImportAsync(raw, new LayerSpec { Id = "x", Parent = "base" }), "must be the parent's size");
        Assert.Null(Store.Find("x"));
        Assert.Equal(["base.vhdx"], Directory.GetFileSystemEntries(Path.Combine(Root, "layers")).Select(Path.GetFileName));
    }

    [Theory]
    [InlineData("../escape")]
    [InlineData(".hidden")]
    [InlineData("a/b")]
    [InlineData("")]
    public async Task Invalid_ids_are_refused(string id) =>
        await ThrowsAsync(ErrorKind.InvalidArgument, () => Store.CreateAsync(new LayerSpec { Id = id, Capacity = Capacity }), "not a valid layer id");

    [Fact]
    public async Task Unknown_and_duplicate_ids_get_clear_errors()
    {
        await Store.CreateAsync(new LayerSpec { Id = "x", Capacity = Capacity });
        await ThrowsAsync(ErrorKind.AlreadyExists, () => Store.CreateAsync(new LayerSpec { Id = "x" }), "layer x already exists");
        await ThrowsAsync(ErrorKind.NotFound, () => Store.RemoveAsync("nope"), "no layer nope");
        await ThrowsAsync(ErrorKind.NotFound, () => Store.CreateAsync(new LayerSpec { Parent = "nope" }), "no layer nope");
        await ThrowsAsync(ErrorKind.NotFound, () => Store.OpenLayerAsync("nope", writable: false), "no layer nope");
    }

    [Fact]
    public async Task Labels_are_added_replaced_and_removed()
    {
        await Store.CreateAsync(new LayerSpec { Id = "x", Capacity = Capacity, Labels = new Dictionary<string, string> { ["a"] = "1", ["b"] = "2" } });
        Layer layer = await Store.UpdateLabelsAsync("x", new Dictionary<string, string?> { ["a"] = "3", ["b"] = null, ["c"] = "4" });
        Assert.Equal(new Dictionary<string, string> { ["a"] = "3", ["c"] = "4" }, layer.Labels);
    }

    [Fact]
    public async Task A_directory_that_is_not_a_store_is_refused_and_left_alone()
    {
        string other = Temp.GetFilePath("other");
        Directory.CreateDirectory(other);
        await File.WriteAllTextAsync(Path.Combine(other, "notes.txt"), "hello");
        await ThrowsAsync(ErrorKind.InvalidArgument, () => LayerStore.OpenAsync(other, create: true), "not a BlockDriver store");
        Assert.Equal(["notes.txt"], Directory.GetFileSystemEntries(other).Select(Path.GetFileName));

        string garbage = Temp.GetFilePath("garbage");
        Directory.CreateDirectory(garbage);
        await File.WriteAllTextAsync(Path.Combine(garbage, "catalog.db"), "not sqlite at all, just text that is long enough to look like a header");
        await ThrowsAsync(ErrorKind.Corrupt, () => LayerStore.OpenAsync(garbage), "not a BlockDriver catalog");
        await ThrowsAsync(ErrorKind.NotFound, () => LayerStore.OpenAsync(Temp.GetFilePath("missing")), "no BlockDriver store");
    }

    [Fact]
    public async Task Reconciliation_quarantines_stray_files_and_reports_missing_ones()
    {
        await Store.CreateAsync(new LayerSpec { Id = "kept", Capacity = Capacity });
        await Store.CreateAsync(new LayerSpec { Id = "lost", Capacity = Capacity });
        File.Delete(Path.Combine(Root, "layers", "lost.vhdx"));
        VhdxFile.CreateDynamic(Path.Combine(Root, "layers", "stray.vhdx"), Mib);

        await ReopenStoreAsync();

        Assert.Contains(Store.Reconciliation, a => a.Subject == "lost" && a.Finding.Contains("missing", StringComparison.Ordinal));
        ReconcileAction stray = Assert.Single(Store.Reconciliation, a => a.Subject == "stray.vhdx");
        Assert.StartsWith("quarantined", stray.Action, StringComparison.Ordinal);
        Assert.Single(Directory.GetFiles(Path.Combine(Root, "quarantine")), f => f.EndsWith("-stray.vhdx", StringComparison.Ordinal));
        Assert.NotNull(Store.Find("lost"));
        await Store.RemoveAsync("lost");
        await ReopenStoreAsync();
        Assert.Empty(Store.Reconciliation);
    }

    [Fact]
    public async Task Two_store_instances_creating_layers_at_once_lose_nothing()
    {
        await using LayerStore second = await LayerStore.OpenAsync(Root);
        Task[] creates = [.. Enumerable.Range(0, 20).Select(i => (i % 2 == 0 ? Store : second).CreateAsync(new LayerSpec { Id = $"l{i}", Capacity = Capacity }))];
        await Task.WhenAll(creates);
        Assert.Equal(20, Store.List().Count);
        Assert.Equal(20, second.List().Count);
    }
}
