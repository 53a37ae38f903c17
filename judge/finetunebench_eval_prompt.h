// QUOTED VERBATIM FOR REPRODUCTION, NOT OUR TEXT.
//
// The FineTuneBench authors' answer-judging prompt (eval_prompt: a system
// message and a user-message template), quoted so that the `paper` grader
// (judge/llm_grader.h, PaperGraderProtocol) can grade answers exactly as the
// paper's protocol does. Nothing else of the upstream repository is copied.
//
//   Source:  https://github.com/kevinwu23/StanfordFineTuneBench
//            prompts/latest_news.json, key "eval_prompt" (fields "system"
//            and "user")
//   Commit:  6b2c6a28556c9f8f7beb43cfecc78d24377279f6 (2024-11-11, the commit
//            that added the file; unchanged at HEAD
//            5aaa1171b253f2b51eb6c28494de6e1603a6daf8, 2024-11-13)
//   Authors: Eric Wu, Kevin Wu, James Zou (FineTuneBench, arXiv 2411.05059)
//   Licence: the repository declares none (no LICENSE file, none stated in
//            its README at that commit). The text is quoted only because the
//            protocol cannot be reproduced without it; it is kept in this one
//            file, byte for byte as published (JSON escapes decoded), with
//            the original trailing spaces.
//
// The user template has four placeholders, filled by PaperGraderUserPrompt:
// {question}, {answer} (the reference answer), {context}, {guess} (the answer
// being graded).
#ifndef FTB_JUDGE_FINETUNEBENCH_EVAL_PROMPT_H_
#define FTB_JUDGE_FINETUNEBENCH_EVAL_PROMPT_H_

#include <string_view>

namespace ftb::judge {

inline constexpr std::string_view kFineTuneBenchEvalSystemPrompt =
    "You are given a question, the answer, and the context that the question came from.\n"
    "You are also given a guess for the answer. Your job is to judge whether the guess is correct. \n"
    "Your output should be either \"Correct\" or \"Incorrect\".\n"
    "\n"
    "Example question: \n"
    "Question: What is the name of the bridge in California that cost $150 million to repair in 2024?\n"
    "Answer: Golden Gate Bridge\n"
    "Context: The 2024 repairs on the Golden Gate Bridge cost taxpayers $150 million.\n"
    "Guess: Golden Gate\n"
    "Evaluation: Correct";

inline constexpr std::string_view kFineTuneBenchEvalUserTemplate =
    "Question: {question}\n"
    "Answer: {answer}\n"
    "Context: {context}\n"
    "Guess: {guess}\n"
    "Evaluation: ";

}  // namespace ftb::judge

#endif  // FTB_JUDGE_FINETUNEBENCH_EVAL_PROMPT_H_
