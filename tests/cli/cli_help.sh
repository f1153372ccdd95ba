#!/bin/sh
# cli_help.sh: what a user meets first on the command line.
#  - an unknown flag names the nearest valid one, for every command (and a
#    flag of another command says whose it is); an unknown command too;
#  - `shardtune --version`: the version, the backends, the libraries;
#  - the man page, printed by the program from its flag table: `man -l`
#    renders it without a warning, every flag of every command's --help is in
#    it, and `make install` installs it.
. "$top_srcdir/tests/lib.sh"
need_tool man "to render the man page"

expect_error() { # WANT ARGS...: exit status 2 and one line holding WANT
    want=$1
    shift
    rc=0
    "$SHARDTUNE" "$@" >"$SCRATCH/out" 2>"$SCRATCH/err" || rc=$?
    [ "$rc" = 2 ] || fail "shardtune $*: exit status $rc (2 expected): $(cat "$SCRATCH/err")"
    [ "$(grep -c . "$SCRATCH/err")" = 1 ] || fail "shardtune $*: not one line: $(cat "$SCRATCH/err")"
    grep -qF -- "$want" "$SCRATCH/err" || fail "shardtune $*: expected \"$want\", got: $(cat "$SCRATCH/err")"
    echo "ok: shardtune $* -> $(cat "$SCRATCH/err")"
}
expect_error "--lora_rank: unknown flag (did you mean --lora_r?)" train --lora_rank 8
expect_error "--learning_rat: unknown flag (did you mean --learning_rate?)" train --learning_rat 1e-4
expect_error "--dataset_nam: unknown flag (did you mean --dataset_name?)" eval --dataset_nam x
expect_error "--max_new_token: unknown flag (did you mean --max_new_tokens?)" generate --max_new_token 3
expect_error "--max_shard: unknown flag (did you mean --max_shard_size?)" merge --max_shard 1GB
expect_error "--num_process: unknown flag (did you mean --num_processes?)" plan --num_process 2
expect_error "--tokeniser: unknown flag (did you mean --tokenizer?)" tokenize --tokeniser x
expect_error "--add_generation: unknown flag (did you mean --add_generation_prompt?)" chat-template --add_generation x
expect_error "--checkpont: unknown flag (did you mean --checkpoint?)" convert llama2c --checkpont x
expect_error "--max_new_tokens: not a flag of train (a flag of generate)" train --max_new_tokens 3
expect_error "--xyzzy: unknown flag (see shardtune eval --help)" eval --xyzzy 1
expect_error "'trian' is not a command (did you mean train?)" trian

"$SHARDTUNE" --version >"$SCRATCH/version" || fail "--version"
cat "$SCRATCH/version"
grep -q "^shardtune [0-9]" "$SCRATCH/version" || fail "--version: no version line"
grep -q "^backends: CPU" "$SCRATCH/version" || fail "--version: no backends line"
grep -q "^libraries: .*HDF5 [0-9].*jansson [0-9]" "$SCRATCH/version" || fail "--version: no libraries line"

page="$top_builddir/shardtune.1"
[ -s "$page" ] || fail "$page was not built"
MANWIDTH=200 man --warnings -l "$page" >"$SCRATCH/man.txt" 2>"$SCRATCH/man.err" || fail "man -l failed"
[ ! -s "$SCRATCH/man.err" ] || fail "man -l warns: $(cat "$SCRATCH/man.err")"
for cmd in train eval generate merge plan; do
    "$SHARDTUNE" $cmd --help | sed -n 's/^  --\([a-z0-9_]*\).*/\1/p' >"$SCRATCH/flags"
    [ -s "$SCRATCH/flags" ] || fail "$cmd --help lists no flags"
    # the flags of the command's own section
    sed -n "/^FLAGS OF $cmd\$/,/^[A-Z]/p" "$SCRATCH/man.txt" >"$SCRATCH/section"
    while read -r f; do
        grep -q -- "--$f " "$SCRATCH/section" || fail "--$f of $cmd is not in the man page's FLAGS OF $cmd"
    done <"$SCRATCH/flags"
    echo "ok: the $(wc -l <"$SCRATCH/flags") flags of $cmd are in the man page"
done

make -s -C "$top_builddir" install-man DESTDIR="$SCRATCH/inst" >/dev/null || fail "make install-man"
installed=$(find "$SCRATCH/inst" -name shardtune.1 | head -n 1)
[ -n "$installed" ] && cmp -s "$installed" "$page" || fail "make install did not install the man page"
echo "ok: installed as ${installed#$SCRATCH/inst}"
echo PASS
