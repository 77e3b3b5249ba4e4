// fuzz_preprocessor_config: preprocessor_config.json text through PreprocessorConfig::from_json,
// as from_file reads it. An accepted config must read back from what to_json writes.
#include <nlohmann/json.hpp>

#include "core/common.h"
#include "core/io/config.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(data, data + size);
    } catch (const nlohmann::json::exception&) {
        return 0;
    }
    dl::PreprocessorConfig p;
    try {
        p = dl::PreprocessorConfig::from_json(j, "preprocessor_config.json");
    } catch (const dl::Error&) {
        return 0;
    }
    const nlohmann::json written = p.to_json();
    try {
        const dl::PreprocessorConfig again = dl::PreprocessorConfig::from_json(written, "written");
        if (again.to_json() != written)
            dlfuzz::fail("to_json -> from_json -> to_json changed the config:\n" + written.dump() + "\n" +
                         again.to_json().dump());
    } catch (const dl::Error& e) {
        dlfuzz::fail(std::string("to_json wrote a config from_json refuses: ") + e.what() + "\n" +
                     written.dump());
    }
    return 0;
}
