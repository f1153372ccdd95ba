# The program, device-agnostic.
libshardtune_a_SOURCES += src/log.c src/rng.c src/checksum.c src/dtype.c src/comm.c src/comm_mpi.c src/comm_sim.c src/fsdp.c src/backend.c src/backend_cpu.c src/backend_null.c src/backend_profile.c src/model.c src/lora.c \
	src/optim.c src/config.c src/data.c src/session.c src/run_data.c src/train.c src/generate.c src/merge.c src/plan.c src/convert_llama2c.c \
	src/quant4.c src/weight4.c src/file_read.c src/chat_model.c
noinst_HEADERS += src/log.h src/rng.h src/checksum.h src/dtype.h src/comm.h src/comm_mpi.h src/fsdp.h src/backend.h src/model.h src/lora.h src/optim.h \
	src/config.h src/data.h src/session.h src/run_data.h src/train.h src/generate.h src/merge.h src/plan.h src/convert_llama2c.h \
	src/quant4.h src/weight4.h src/file_read.h src/chat_model.h
# bitsandbytes 4-bit checkpoints (*-bnb-4bit) read as the 4-bit layout
libshardtune_a_SOURCES += src/weight4_bnb.c
noinst_HEADERS += src/weight4_bnb.h
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
