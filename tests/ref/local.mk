# Reference tests: shardtune against transformers + peft + torch (the Python
# "oracle" in tests/ref/*.py, run by the interpreter that tests/lib.sh finds),
# and checks that need no Python at all.
TESTS += tests/ref/lora_grads_match_peft.sh tests/ref/train_matches_torch.sh \
	tests/ref/checkpointing_bitwise.sh tests/ref/train_bad_flags.sh \
	tests/ref/reference_selfcheck.sh tests/ref/generate_matches_hf.sh
EXTRA_DIST += tests/ref/lora_grads_match_peft.sh tests/ref/train_matches_torch.sh \
	tests/ref/checkpointing_bitwise.sh tests/ref/train_bad_flags.sh \
	tests/ref/reference_selfcheck.sh tests/ref/tiny_model.sh \
	tests/ref/reference_common.py tests/ref/make_tiny_llama.py tests/ref/reference_grads.py \
	tests/ref/reference_train.py tests/ref/compare_tensors.py tests/ref/compare_metrics.py \
	tests/ref/check_adapter.py tests/ref/selfcheck_reference.py
EXTRA_DIST += tests/ref/generate_matches_hf.sh
TESTS += tests/ref/chat_adapter_loads_in_peft.sh
EXTRA_DIST += tests/ref/chat_adapter_loads_in_peft.sh
TESTS += tests/ref/merge_matches_peft.sh
EXTRA_DIST += tests/ref/merge_matches_peft.sh
TESTS += tests/ref/export_loads_in_peft.sh
EXTRA_DIST += tests/ref/export_loads_in_peft.sh
TESTS += tests/ref/lora_dropout_matches_peft.sh
EXTRA_DIST += tests/ref/lora_dropout_matches_peft.sh
TESTS += tests/ref/dora_matches_peft.sh
EXTRA_DIST += tests/ref/dora_matches_peft.sh
TESTS += tests/ref/peft_adapter_forms.sh
EXTRA_DIST += tests/ref/peft_adapter_forms.sh tests/ref/make_adapter_forms.py tests/ref/peft_eval_losses.py
TESTS += tests/ref/qlora_matches_bnb.sh
EXTRA_DIST += tests/ref/qlora_matches_bnb.sh tests/ref/qlora_reference.py tests/ref/qlora_common.py
TESTS += tests/ref/qdora_matches_bnb.sh
EXTRA_DIST += tests/ref/qdora_matches_bnb.sh tests/ref/qdora_reference.py
TESTS += tests/ref/qlora_export_merge.sh
EXTRA_DIST += tests/ref/qlora_export_merge.sh
TESTS += tests/ref/modules_to_save_forms.sh tests/ref/modules_to_save_train.sh
EXTRA_DIST += tests/ref/modules_to_save_forms.sh tests/ref/modules_to_save_train.sh \
	tests/ref/make_saved_module_adapters.py tests/ref/adapter_roundtrip.sh
TESTS += tests/ref/qlora_shard_load.sh
EXTRA_DIST += tests/ref/qlora_shard_load.sh
TESTS += tests/ref/qlora_prequantized.sh
EXTRA_DIST += tests/ref/qlora_prequantized.sh tests/ref/qlora_prequantized.py
EXTRA_DIST += tests/ref/qlora_lib.sh
TESTS += tests/ref/tensorboard_matches_metrics.sh
EXTRA_DIST += tests/ref/tensorboard_matches_metrics.sh tests/ref/tensorboard_check.py
