// Token estimates for cost planning. Providers bill exact token counts from
// their own tokenizers; before a job runs ftb only needs a close estimate,
// and whenever a provider reports usage, the reported figure wins (and both
// are kept). Thread-safe, header-only.
#ifndef FTB_COST_TOKENS_H_
#define FTB_COST_TOKENS_H_

#include <cstdint>
#include <string_view>

namespace ftb::cost {

// About 4 bytes of English text per token (OpenAI's rule of thumb for its
// BPE tokenizers); never less than 1 for non-empty text.
inline uint64_t EstimateTokens(std::string_view text) {
  return text.empty() ? 0 : (text.size() + 3) / 4;
}

// Tokens of one chat-format training example (user + assistant message):
// content plus the chat format's per-message overhead (3 per message, 3 to
// prime the reply), as in OpenAI's token-counting guide.
inline uint64_t ChatExampleTokens(std::string_view prompt, std::string_view answer) {
  return EstimateTokens(prompt) + EstimateTokens(answer) + 3 * 2 + 3;
}

// Tokens billed for training: every token of the training file, once per
// epoch.
inline uint64_t TrainingTokens(uint64_t file_tokens, uint32_t epochs) {
  return file_tokens * epochs;
}

}  // namespace ftb::cost

#endif  // FTB_COST_TOKENS_H_
