"""Built-in rules for indirect injection: instructions hidden in content an
agent reads (a retrieved document, a tool result, an email, a web page, a
code comment) and addressed to the model that reads it, not to a person.

They look for what such text does that ordinary content does not:

- it talks to the model: "note to the AI assistant: ...", "if you are an AI
  reading this, ...", "AI agents processing this page must ..." (only in
  context items: ``ADDRESSED_RULES``; a user's own prompt may address the
  model like that);
- it hooks the model's task: "when summarising this document, also send ...",
  "instead of translating, reply with ...";
- it sends data out or hides the action: "forward the conversation history
  to ...", "send the API keys to ...", "... without telling the user";
- it overrides the user: "ignore the user's request", "disregard what the
  user asked".

Same form as ``_injection_builtin`` (normalised text, RE2, word edges).
"""

from __future__ import annotations

from ._injection_builtin import Rule

__all__ = ["ADDRESSED_RULES", "INDIRECT_RULES"]

_START = "(?:^| )"
_END = "(?: |$)"


def _w(alternatives: str) -> str:
    return f"(?:{alternatives})"


_AI = _w(
    "ai|a i|assistant|ai assistant|ai agent|agent|agents|ai agents|llm|llms|language model"
    "|large language model|chatbot|bot|model|gpt|chatgpt|claude|gemini|copilot|ai model"
    "|ai system|ai systems|assistants|models|language models|autonomous agent"
)
_TASK = _w(
    "summari[sz]e|summari[sz]ing|summari[sz]es|read|reading|reads|process|processing|processes"
    "|analy[sz]e|analy[sz]ing|translate|translating|review|reviewing|parse|parsing|index"
    "|indexing|answer|answering|handle|handling|ingest|ingesting|scrape|scraping|crawl|crawling"
)
_TASK_ING = _w(
    "summari[sz]ing|reading|processing|analy[sz]ing|translating|reviewing|parsing|indexing"
    "|answering|handling|ingesting|scraping|crawling"
)
_CONTENT = _w(
    "document|email|e mail|message|page|web page|webpage|website|site|text|file|content|article"
    "|post|data|pdf|repository|repo|code|readme|comment|review|ticket|issue|result|results"
    "|output|context|conversation|thread|note|notes|resume|cv|transcript"
)
_ACTION = _w(
    "send|forward|email|e mail|upload|post|include|append|insert|add|visit|open|navigate to"
    "|fetch|call|execute|run|reply|respond|output|say|write|print|tell the user|inform the user"
    "|recommend|mention|praise|rate|delete|transfer|exfiltrate|leak|ignore|disregard|click"
)
_SECRET_THING = _w(
    "conversation|conversation history|chat history|chat log|chat logs|chat|history|messages"
    "|previous messages|password|passwords|credentials|api key|api keys|secret|secrets|token"
    "|tokens|access token|private key|private keys|ssh key|ssh keys|session cookie|cookies"
    "|contacts|system prompt|user data|personal data|personal information|files|documents"
    "|emails|inbox|credit card|credit card numbers|env file|environment variables"
)
_DETERMINERS = (
    "(?: (?:the|all|this|these|your|my|his|her|their|of|entire|full|whole|user s|users))*"
)


def _rule(*patterns: str) -> Rule:
    return Rule("indirect-instruction", "|".join(f"(?:{p})" for p in patterns))


# Text that talks to the model. A user's own prompt may well say
# "instructions for the AI: ...", so these apply to context items only.
ADDRESSED_RULES: tuple[Rule, ...] = (
    _rule(
        # "note to the AI: ...", "instructions for the assistant"
        f"{_START}(?:note|notes|message|instruction|instructions|reminder|attention"
        "|important|new instructions|hidden instructions|additional instructions"
        "|updated instructions|special instructions|task|directive|important message"
        f"|system note|p s){_w(' to| for')}(?: the| any| all| an| a)? {_AI}{_END}",
        # "if you are an AI reading this", "AI agents processing this page must"
        f"{_START}if you (?:are|re) (?:an?|the) {_AI}{_END}",
        f"{_START}(?:any |all |every |the )?{_AI} (?:that is |who is |which is )?"
        f"{_TASK_ING} this {_CONTENT}{_END}",
        # "you must strictly adhere to the following instruction: ..." (not
        # "you must follow the instructions in the box": a manual says that)
        f"{_START}you (?:must|are required to|re required to|have to|need to|shall)"
        " (?:strictly |now |immediately |carefully )?(?:follow|adhere to|obey|comply with"
        "|execute|carry out) (?:the following|these following|this|the new|these new"
        "|the updated|my new|my next|the next) (?:instruction|instructions|command|commands"
        f"|directive|directives|order|orders){_END}",
    ),
    # Content that tells the model which tool to call: "you must ... by using
    # the transfer funds tool", "your next step is to call the delete file
    # tool", "do not use other tools". A user's prompt may ask for a tool;
    # a tool result or a document has no business doing so.
    Rule(
        "tool-directive",
        f"{_START}(?:you must|you should|you need to|you have to|you are required to"
        "|you re required to|make sure to|be sure to|your next step is to"
        "|your next step must be to|your next step should be to|now|please|immediately)"
        "(?: also| now| immediately| first| then)?"
        " (?:call|use|invoke|run|execute|trigger)(?: [^ ]+){1,3} (?:tool|function)"
        f"{_END}"
        f"|{_START}by (?:using|calling|invoking) the(?: [^ ]+){{1,3}} tool{_END}"
        f"|{_START}do not (?:use|call) (?:any )?other (?:tools|tool|functions|function){_END}",
    ),
)

# What hidden instructions do, wherever they appear.
INDIRECT_RULES: tuple[Rule, ...] = (
    _rule(
        # "when summarising this document, also send ..."
        f"{_START}(?:when|while|after|before|once|if|as) (?:you |you re |you are )?"
        f"{_TASK}(?: [^ ]+){{0,2}} this {_CONTENT}(?: [^ ]+){{0,6}}"
        " (?:also|additionally|then|please|you must|you should|make sure to|be sure to"
        f"|remember to|always|instead|first)(?: [^ ]+){{0,2}} {_ACTION}{_END}",
        # "instead of summarising, reply with ..."
        f"{_START}instead of {_TASK}(?: [^ ]+){{0,4}}"
        f" (?:you must|you should|please|just|only)? ?{_ACTION}{_END}",
        # "ignore the user's request", "disregard what the user asked"
        f"{_START}(?:ignore|disregard|forget|override)(?: (?:the|what|whatever|any|all))*"
        " (?:user s|users|user|human s|human) (?:request|requests|question|questions"
        f"|instructions|instruction|query|prompt|asked|said|wants|task){_END}",
        # "forward the chat history to ...", "send all API keys to ..."
        f"{_START}(?:send|forward|email|e mail|upload|post|transfer|exfiltrate|leak|copy"
        f"|share){_DETERMINERS} {_SECRET_THING}(?: [^ ]+){{0,6}}"
        " to (?:http|https|www|ftp|this address|the following address|the address"
        "|the url|the following url|this url|the email|this email|the endpoint"
        f"|this endpoint|the server|this server|attacker|me at){_END}",
        # "... without telling the user", "and do not tell the user"
        f"{_START}(?:without|and do not|and don t|and never)"
        " (?:telling|tell|informing|inform|notifying|notify|alerting|alert"
        f"|letting|let) the (?:user|human){_END}",
    ),
)
