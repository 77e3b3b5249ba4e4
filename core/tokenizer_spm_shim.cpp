// placeholder: replaced by the tokenizer work
extern "C" int dartlens_spm_abi_version() { return 0; }
