#!/bin/sh
# pack.sh: builds shardtune with CUDA on this machine and packs it for a GPU
# machine that has CUDA (its libraries in /usr/local/cuda or in Python's
# nvidia-* packages) and Python's torch stack, but none of this project's other
# libraries (Open MPI, parallel HDF5, oneDNN, jansson, PCRE2, libyaml) and
# no way to install them.  tests/gpu/check.sh runs from the pack there.
#
#   tests/gpu/pack.sh [PACK_DIR]      (default: .gpu/pack; .gpu/ is git-ignored)
#
# The pack looks like a build tree, so the tests run on it unchanged
# (top_builddir=PACK_DIR):
#   shardtune, mpirun, tests/{fsdp/make_random_llama,io/st_dump,gpu/op_check}
#              wrappers that set the environment (env.sh) and run the program
#   .real/     the programs and shardtune-cuda.so
#   lib/       every shared library they and Open MPI load, except glibc's,
#              the C++ runtime's and CUDA's (the GPU machine has newer ones)
#   usr/       Open MPI's launcher, daemon, plugins and help files and PMIx's
#              plugins, in the layout OPAL_PREFIX relocates
# and PACK_DIR.tar.xz of it all, to carry to the device machine.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
pack=${1:-$top/.gpu/pack}
build=$top/_build_cuda
multiarch=x86_64-linux-gnu

[ -x "$(command -v nvcc || true)" ] || { echo "pack.sh: nvcc not found: the pack needs the CUDA build" >&2; exit 1; }
mkdir -p "$build"
if [ ! -f "$build/Makefile" ]; then
    (cd "$top" && autoreconf -fi >/dev/null 2>&1)
    (cd "$build" && "$top/configure" --with-cuda -q)
fi
make -C "$build" -j"$(nproc)" shardtune shardtune-cuda.so tests/gpu/op_check tests/fsdp/make_random_llama \
    tests/io/st_dump >/dev/null

rm -rf "$pack" "$pack.tar.xz"
mkdir -p "$pack/.real" "$pack/lib" "$pack/tests/fsdp" "$pack/tests/io" "$pack/tests/gpu" "$pack/usr/bin" \
    "$pack/usr/lib/$multiarch" "$pack/usr/share"
for p in shardtune shardtune-cuda.so tests/gpu/op_check tests/fsdp/make_random_llama tests/io/st_dump; do
    cp "$build/$p" "$pack/.real/"
done
cp -L /usr/bin/orted /usr/bin/orterun "$pack/usr/bin/"
cp -a /usr/lib/$multiarch/openmpi /usr/lib/$multiarch/pmix2 "$pack/usr/lib/$multiarch/"
cp -a /usr/share/openmpi "$pack/usr/share/"

# shared libraries: what ldd resolves for the programs and the plugins,
# less what every Linux (glibc, the C++ runtime) or the CUDA install has
for f in "$pack"/.real/shardtune "$pack"/.real/op_check "$pack"/.real/make_random_llama "$pack"/.real/st_dump \
         "$pack"/usr/bin/* "$pack"/usr/lib/$multiarch/openmpi/lib/openmpi3/*.so \
         "$pack"/usr/lib/$multiarch/pmix2/lib/pmix/*.so; do
    ldd "$f" 2>/dev/null | awk '$3 ~ /^\// {print $3}'
done | sort -u | grep -v -e '/cuda' -e '/libc\.so' -e '/libm\.so' -e '/libdl\.so' -e '/libpthread\.so' \
    -e '/librt\.so' -e '/libresolv\.so' -e '/ld-linux' -e '/libstdc++\.so' -e '/libgcc_s\.so' |
    while read -r lib; do cp -L "$lib" "$pack/lib/"; done

cat > "$pack/env.sh" <<'EOF'
# env.sh: sourced by the pack's wrappers with PACK set to the pack's directory.
export LD_LIBRARY_PATH="$PACK/lib:$PACK/usr/lib/x86_64-linux-gnu/openmpi/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# NCCL, cuBLAS or the CUDA runtime from Python's nvidia-* packages (which
# torch brings) where the CUDA install lacks them
nvidia_dirs=$(python3 -c 'import nvidia; print(" ".join(nvidia.__path__))' 2>/dev/null || true)
for lib in libnccl.so.2 libcublas.so.13 libcublasLt.so.13 libcudart.so.13; do
    if ! ls /usr/local/cuda/lib64/$lib /usr/local/cuda/targets/x86_64-linux/lib/$lib >/dev/null 2>&1 &&
        [ -n "$nvidia_dirs" ]; then
        found=$(find $nvidia_dirs -name "$lib" 2>/dev/null | head -n 1)
        [ -n "$found" ] && LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$(dirname "$found")"
    fi
done
export OPAL_PREFIX="$PACK/usr"
export PMIX_INSTALL_PREFIX="$PACK/usr/lib/x86_64-linux-gnu/pmix2"
export PATH="$PACK/usr/bin:$PATH"
export OMPI_MCA_mca_base_component_show_load_errors=0
# one node, no ssh: Open MPI's launcher (and a singleton's daemon) start
# processes locally
export OMPI_MCA_plm=isolated
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
EOF

# wrapper NAME REAL UP: NAME runs .real/REAL; UP leads from NAME's directory to the pack
wrapper() {
    cat > "$pack/$1" <<EOF
#!/bin/sh
PACK=\$(cd "\$(dirname "\$0")/$3" && pwd)
. "\$PACK/env.sh"
exec $2 "\$@"
EOF
    chmod +x "$pack/$1"
}
wrapper shardtune '"$PACK/.real/shardtune"' .
wrapper mpirun '"$PACK/usr/bin/orterun"' .
wrapper tests/fsdp/make_random_llama '"$PACK/.real/make_random_llama"' ../..
wrapper tests/io/st_dump '"$PACK/.real/st_dump"' ../..
wrapper tests/gpu/op_check '"$PACK/.real/op_check"' ../..

tar -C "$(dirname "$pack")" -cJf "$pack.tar.xz" "$(basename "$pack")"
echo "pack.sh: $pack ($(du -sh "$pack" | cut -f1)), $pack.tar.xz ($(du -h "$pack.tar.xz" | cut -f1))"
