// fuzz_config: config.json text through LlavaConfig::from_json, as LlavaConfig::from_file reads
// it (nlohmann's parse errors are what from_file reports as "not valid JSON"). An accepted config
// must answer its derived sizes and must read back from what to_hf_json writes.
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
    dl::LlavaConfig c;
    try {
        c = dl::LlavaConfig::from_json(j, "config.json");
    } catch (const dl::Error&) {
        return 0;
    }
    (void)c.num_image_tokens();
    (void)c.vision.head_dim();
    (void)c.text.head_dim();
    const nlohmann::json written = c.to_hf_json();
    try {
        const dl::LlavaConfig again = dl::LlavaConfig::from_json(written, "written config.json");
        if (again.to_hf_json() != written)
            dlfuzz::fail("to_hf_json -> from_json -> to_hf_json changed the config:\n" + written.dump() +
                         "\n" + again.to_hf_json().dump());
    } catch (const dl::Error& e) {
        dlfuzz::fail(std::string("to_hf_json wrote a config from_json refuses: ") + e.what() + "\n" +
                     written.dump());
    }
    return 0;
}
