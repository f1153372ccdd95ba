# The program, device-agnostic.
libshardtune_a_SOURCES += src/log.c src/rng.c src/checksum.c src/dtype.c src/comm.c src/comm_mpi.c src/comm_sim.c src/fsdp.c src/backend.c src/backend_cpu.c src/gemm.c src/gemm_thin.c src/gemm_thin_bf16.c src/cpu_vec.c src/backend_null.c src/backend_profile.c src/model.c src/lora.c \
	src/optim.c src/config.c src/data.c src/session.c src/run_data.c src/train.c src/generate.c src/merge.c src/plan.c src/convert_llama2c.c \
	src/quant4.c src/weight4.c src/file_read.c src/chat_model.c src/suggest.c src/commands.c src/flops.c src/progress.c
noinst_HEADERS += src/log.h src/rng.h src/checksum.h src/dtype.h src/comm.h src/comm_mpi.h src/fsdp.h src/backend.h src/gemm.h src/gemm_thin.h src/gemm_thin_internal.h src/cpu_vec.h src/model.h src/lora.h src/optim.h \
	src/config.h src/data.h src/session.h src/run_data.h src/train.h src/generate.h src/merge.h src/plan.h src/convert_llama2c.h \
	src/quant4.h src/weight4.h src/file_read.h src/chat_model.h src/suggest.h src/commands.h src/flops.h src/progress.h
# bitsandbytes 4-bit checkpoints (*-bnb-4bit) read as the 4-bit layout
libshardtune_a_SOURCES += src/weight4_bnb.c
noinst_HEADERS += src/weight4_bnb.h
# signals and the job's time limit: stop after a step with a checkpoint
libshardtune_a_SOURCES += src/preempt.c
noinst_HEADERS += src/preempt.h
# training's answers to faults: non-finite steps skipped, one run at a time
# in an output directory (a lock cleared when its owner died), ranks that
# agree on flags, configuration, files and data before they start; test hooks that
# make faults happen (environment variables only the tests set)
libshardtune_a_SOURCES += src/bad_steps.c src/fault_inject.c src/run_lock.c src/rank_agree.c
noinst_HEADERS += src/bad_steps.h src/fault_inject.h src/run_lock.h src/rank_agree.h
# mkdir -p, shared by the commands that write directories
libshardtune_a_SOURCES += src/dir_make.c
noinst_HEADERS += src/dir_make.h
# train's logs (metrics.jsonl; TensorBoard event files with --report_to
# tensorboard): protoc-c compiles the Event message at build time, into the
# build tree's src/.
libshardtune_a_SOURCES += src/tb_events.c src/report_to.c src/train_log.c
noinst_HEADERS += src/tb_events.h src/report_to.h src/train_log.h
nodist_libshardtune_a_SOURCES = src/tb_event.pb-c.c src/tb_event.pb-c.h
BUILT_SOURCES += src/tb_event.pb-c.h
CLEANFILES += src/tb_event.pb-c.c src/tb_event.pb-c.h
EXTRA_DIST += src/tb_event.proto
AM_CPPFLAGS += -I$(top_builddir)/src
# one rule makes both files; the header is ordered after the source so that
# a parallel make runs protoc-c once
src/tb_event.pb-c.c: $(srcdir)/src/tb_event.proto
	$(MKDIR_P) src
	$(PROTOC_C) --proto_path=$(srcdir)/src --c_out=src $(srcdir)/src/tb_event.proto
src/tb_event.pb-c.h: src/tb_event.pb-c.c
	@:
# Loss plots: the data side always, the drawing with cairo when configure
# found it (else plot_none.c refuses every plot with one line).
libshardtune_a_SOURCES += src/plot_data.c src/plot_cmd.c src/plot_train.c
noinst_HEADERS += src/plot_data.h src/plot_draw.h src/plot_cmd.h src/plot_train.h
if HAVE_CAIRO
libshardtune_a_SOURCES += src/plot_draw.c
AM_CPPFLAGS += $(CAIRO_CFLAGS)
LDADD_COMMON += $(CAIRO_LIBS)
else
libshardtune_a_SOURCES += src/plot_none.c
endif
