namespace BlockDriver.Docker.Tests.EndToEnd;

/// <summary>
/// Build contexts of the seed's shape — <c>FROM</c> an imported image, <c>COPY . /app</c>, <c>RUN</c> a build step,
/// <c>CMD</c> the program — for <c>docker build</c> without a registry or network:
/// <list type="bullet">
/// <item><see cref="WriteDebian"/>: a Makefile compiling hello.c with gcc and app.py printing a greeting and the C
/// program's line (needs an image with python3, make, gcc and libc6-dev: the Debian rootfs).</item>
/// <item><see cref="WriteBusybox"/>: the same shape for the busybox image: <c>RUN sh /app/build.sh</c> writes
/// /app/out/greeting and 4 MiB of random data (more than the socket buffers hold, so the plugin's Diff of the RUN
/// container is still streaming while dockerd creates and fills the next layer), <c>CMD</c> prints the greeting.</item>
/// </list>
/// Running the built image prints <c>hello from NAME</c> (plus, on Debian, the C program's line). Shared by the
/// soak test and tools/BlockDriver.DockerBench (linked source).
/// </summary>
internal static class SeedContext
{
    /// <summary>Writes the Debian seed context into <paramref name="directory"/> (created).</summary>
    public static void WriteDebian(string directory, string baseImage, string name)
    {
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, "Dockerfile"), $"FROM {baseImage}\nCOPY . /app\nRUN make -C /app\nCMD python3 /app/app.py\n");
        File.WriteAllText(Path.Combine(directory, "Makefile"), "hello: hello.c\n\tgcc -O2 -o hello hello.c\n");
        File.WriteAllText(Path.Combine(directory, "hello.c"), "#include <stdio.h>\nint main(void) { puts(\"compiled by gcc in the build\"); return 0; }\n");
        File.WriteAllText(Path.Combine(directory, "app.py"),
            $"import subprocess\nprint(\"hello from {name}; \" + subprocess.run([\"/app/hello\"], capture_output=True, text=True).stdout.strip())\n");
    }

    /// <summary>Writes the busybox seed context into <paramref name="directory"/> (created).</summary>
    public static void WriteBusybox(string directory, string baseImage, string name)
    {
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, "Dockerfile"), $"FROM {baseImage}\nCOPY . /app\nRUN sh /app/build.sh\nCMD [\"cat\", \"/app/out/greeting\"]\n");
        File.WriteAllText(Path.Combine(directory, "build.sh"),
            "set -e\nmkdir -p /app/out\nsed \"s/@NAME@/$(cat /app/name)/\" /app/greeting.in > /app/out/greeting\n" +
            "dd if=/dev/urandom of=/app/out/data bs=64k count=64 2>/dev/null\n");
        File.WriteAllText(Path.Combine(directory, "greeting.in"), "hello from @NAME@\n");
        File.WriteAllText(Path.Combine(directory, "name"), name + "\n");
    }
}
