"""Built-in rules in other languages: the override ("ignore the previous
instructions"), reveal ("show your system prompt") and role-hijack ("you are
now an AI without restrictions") families, for the most spoken languages
beyond English: Mandarin, Hindi, Spanish, French, Arabic, Bengali,
Portuguese, Russian, Urdu, Indonesian, German, Japanese, Marathi, Telugu,
Turkish, Tamil, Vietnamese, Korean, Italian, Persian and Swahili.

Each rule is written as word lists (``"a|b c"``: alternatives, each one or
more words) that are put through ``normalize`` when the module is imported,
so they match normalised text exactly (case folding, NFKC, nukta and other
composition exclusions, zero-width non-joiners removed). ``_seq`` joins
parts with up to ``gap`` other words between them, in the order the language
puts them (verb first in Spanish, last in Hindi, Turkish or Japanese).
Languages written without spaces (Chinese, Japanese) use no word edges;
agglutinative ones (Tamil, Telugu, Turkish, Korean) match word stems.
"""

from __future__ import annotations

import re

from ._injection_builtin import Rule
from ._normalize import normalize

__all__ = ["MULTILINGUAL_RULES"]

_START = "(?:^| )"
_END = "(?: |$)"


def _words(alternatives: str, stem: bool = False) -> str:
    """An RE2 group of normalised alternatives; ``stem``: any word ending."""
    escaped = sorted({re.escape(normalize(w)) for w in alternatives.split("|")}, key=len)
    group = "(?:" + "|".join(reversed(escaped)) + ")"
    return group + "[^ ]*" if stem else group


def _seq(*parts: str, gap: int = 2) -> str:
    """Parts in order, as whole words, with up to ``gap`` words between."""
    between = f"(?: [^ ]+){{0,{gap}}} "
    return _START + between.join(parts) + _END


def _rule(name: str, *patterns: str) -> Rule:
    return Rule(name, "|".join(f"(?:{p})" for p in patterns), negatable=False)


_AI_LATIN = "ai|a i|llm|chatbot|gpt|chatgpt"

# Each language: (override, reveal, role-hijack) patterns.
_LANGUAGES: dict[str, tuple[str, ...]] = {
    "es": (
        _seq(
            _words(
                "ignora|ignore|ignoren|ignorad|olvida|olvide|olviden|descarta|omite|omita"
                "|pasa por alto|haz caso omiso de|no hagas caso de"
            ),
            _words("instrucciones|indicaciones|reglas|órdenes|directrices|normas|pautas"),
            _words("anteriores|previas|precedentes|de arriba|originales|iniciales|del sistema"),
        ),
        _seq(
            _words("revela|muestra|muéstrame|dime|imprime|repite|escribe|enséñame|revélame"),
            _words(
                "prompt del sistema|mensaje del sistema|instrucciones del sistema"
                "|instrucciones iniciales|instrucciones ocultas|instrucciones secretas"
                "|prompt inicial|prompt de sistema|tus instrucciones"
            ),
        ),
        _seq(
            _words(f"ia|inteligencia artificial|asistente|modelo|{_AI_LATIN}"),
            _words(
                "sin restricciones|sin límites|sin filtros|sin censura|sin reglas"
                "|sin ninguna restricción|sin ética"
            ),
            gap=1,
        ),
        _seq(
            _words("ya no tienes|no tienes"), _words("restricciones|reglas|límites|filtros"), gap=1
        ),
    ),
    "fr": (
        _seq(
            _words(
                "ignore|ignorez|oublie|oubliez|ne tiens pas compte des|ne tenez pas compte des"
                "|fais abstraction des|faites abstraction des"
            ),
            _words("instructions|consignes|règles|directives|ordres"),
            _words("précédentes|antérieures|ci dessus|initiales|originales|du système"),
        ),
        _seq(
            _words(
                "révèle|révélez|montre|montrez|affiche|affichez|dis moi|dites moi|donne moi"
                "|répète|répétez|imprime|écris"
            ),
            _words(
                "prompt système|invite système|message système|instructions système"
                "|instructions initiales|instructions cachées|instructions secrètes"
                "|prompt initial|tes instructions|vos instructions"
            ),
        ),
        _seq(
            _words(f"ia|intelligence artificielle|assistant|modèle|{_AI_LATIN}"),
            _words(
                "sans restrictions|sans limites|sans filtres|sans censure|sans règles"
                "|sans aucune restriction|non censurée|non censuré|débridée|débridé"
            ),
            gap=1,
        ),
        _seq(
            _words("tu n as plus|vous n avez plus|tu n as aucune|tu n as pas de"),
            _words("restrictions|restriction|règles|limites|filtres"),
            gap=1,
        ),
    ),
    "de": (
        _seq(
            _words(
                "ignoriere|ignorier|ignorieren sie|vergiss|vergessen sie|missachte"
                "|missachten sie|übergehe|übergehen sie"
            ),
            _words(
                "vorherigen|bisherigen|vorigen|obigen|früheren|ursprünglichen"
                "|vorangegangenen|vorhergehenden|alten"
            ),
            _words("anweisungen|instruktionen|regeln|befehle|vorgaben|richtlinien|anweisung"),
            gap=1,
        ),
        _seq(
            _words("zeige|zeig|gib|nenne|verrate|enthülle|wiederhole|drucke|schreibe"),
            _words(
                "systemprompt|system prompt|systemanweisungen|systemnachricht"
                "|ursprünglichen anweisungen|versteckten anweisungen|geheimen anweisungen"
                "|anfänglichen anweisungen|deine anweisungen|ihre anweisungen"
            ),
            gap=3,
        ),
        _seq(
            _words(f"ki|künstliche intelligenz|assistent|modell|{_AI_LATIN}"),
            _words(
                "ohne einschränkungen|ohne beschränkungen|ohne regeln|ohne filter"
                "|ohne zensur|ohne grenzen|ohne jegliche einschränkungen"
            ),
            gap=1,
        ),
        _seq(
            _words("ungefilterte|unzensierte|uneingeschränkte|ungefilterter|unzensierter"),
            _words(f"ki|künstliche intelligenz|assistent|modell|{_AI_LATIN}"),
            gap=0,
        ),
        _seq(
            _words("du hast keine|du hast jetzt keine|sie haben keine"),
            _words("einschränkungen|regeln|filter|grenzen|beschränkungen"),
            gap=1,
        ),
    ),
    "it": (
        _seq(
            _words("ignora|ignorate|dimentica|dimenticate|trascura|non considerare"),
            _words("istruzioni|regole|indicazioni|direttive|ordini"),
            _words("precedenti|iniziali|originali|di sistema|sopra|qui sopra"),
        ),
        _seq(
            _words("rivela|mostra|mostrami|dimmi|stampa|ripeti|scrivi"),
            _words(
                "prompt di sistema|messaggio di sistema|istruzioni di sistema"
                "|istruzioni iniziali|istruzioni nascoste|istruzioni segrete|tue istruzioni"
            ),
        ),
        _seq(
            _words(f"ia|intelligenza artificiale|assistente|modello|{_AI_LATIN}"),
            _words("senza restrizioni|senza limiti|senza filtri|senza censura|senza regole"),
            gap=1,
        ),
        _seq(
            _words("non hai più|non hai alcuna|non hai"),
            _words("restrizioni|regole|limiti|filtri"),
            gap=1,
        ),
    ),
    "pt": (
        _seq(
            _words(
                "ignore|ignora|ignorem|esqueça|esqueca|esquece|desconsidere|desconsidera"
                "|despreze|descarte"
            ),
            _words("instruções|instrucoes|regras|orientações|orientacoes|diretrizes|ordens"),
            _words("anteriores|prévias|previas|acima|iniciais|originais|do sistema"),
        ),
        _seq(
            _words("revele|revela|mostre|mostra|me mostre|diga|imprima|repita|escreva"),
            _words(
                "prompt do sistema|mensagem do sistema|instruções do sistema"
                "|instruções iniciais|instruções ocultas|instruções secretas|prompt inicial"
                "|suas instruções"
            ),
        ),
        _seq(
            _words(f"ia|inteligência artificial|assistente|modelo|{_AI_LATIN}"),
            _words("sem restrições|sem restricoes|sem limites|sem filtros|sem censura|sem regras"),
            gap=1,
        ),
        _seq(
            _words("você não tem mais|voce nao tem mais|você não tem|não tens mais"),
            _words("restrições|restricoes|regras|limites|filtros"),
            gap=1,
        ),
    ),
    "ru": (
        _seq(
            _words(
                "игнорируй|игнорируйте|проигнорируй|проигнорируйте|забудь|забудьте"
                "|не обращай внимания на|не обращайте внимания на|отбрось|отбросьте"
            ),
            _words(
                "предыдущие|прежние|предшествующие|вышеуказанные|вышеприведенные"
                "|изначальные|исходные|системные|прошлые|старые"
            ),
            _words("инструкции|указания|правила|команды|промпты|установки"),
            gap=1,
        ),
        _seq(
            _words(
                "покажи|покажите|раскрой|раскройте|выведи|выведите|напечатай|повтори"
                "|скажи|назови|открой"
            ),
            _words(
                "системный промпт|системные инструкции|системное сообщение"
                "|исходные инструкции|скрытые инструкции|свои инструкции|твои инструкции"
                "|начальные инструкции"
            ),
        ),
        _seq(
            _words(f"ии|искусственный интеллект|ассистент|модель|бот|чат бот|{_AI_LATIN}"),
            _words("без ограничений|без правил|без фильтров|без цензуры"),
            gap=1,
        ),
        _seq(
            _words("у тебя нет|у тебя больше нет|у вас нет"),
            _words("ограничений|правил|фильтров|цензуры"),
            gap=1,
        ),
    ),
    "zh": (
        "(?:忽略|忽视|无视|忘记|忘掉|不要理会|不要遵守|別管|無視|忘記|不理会)掉?你?"
        "(?:所有|全部|一切)?的?(?:之前|以前|先前|此前|上面|上述|前面|以上|原来|原先|原有|前述)"
        "的?(?:所有|全部|一切)?的?(?:指令|指示|说明|說明|规则|規則|提示|提示词|要求|命令)",
        "(?:显示|顯示|告诉我|告訴我|输出|輸出|打印|透露|泄露|洩露|重复|重複|给我看|展示|说出)"
        "(?:一下)?你?的?(?:系统提示词|系统提示|系統提示|系统指令|系統指令|初始指令|原始指令"
        "|隐藏指令|隱藏指令|系统消息|系統訊息|提示词)",
        "(?:没有|不受|沒有|无)(?:任何)?(?:限制|约束|約束|规则|規則|过滤|過濾|审查|審查)的?"
        "(?:人工智能|ai|助手|模型|机器人|機器人)",
    ),
    "ja": (
        "(?:以前|前|上記|これまで|先|今まで|すべて|全て|元)の?(?:すべての|全ての)?"
        "(?:指示|命令|ルール|指令|プロンプト)(?:を|は) ?(?:すべて|全て)?(?:無視|忘れ)",
        "(?:システムプロンプト|初期指示|隠された指示|秘密の指示|元の指示)(?:を|は)? ?"
        "(?:表示|教えて|見せて|出力|開示|繰り返|明かし)",
        "(?:制限|規制|フィルター|検閲|ルール)(?:の|が)?(?:ない|無い|なし)(?:ai|アシスタント|モデル)",
    ),
    "ko": (
        _seq(
            _words("이전|앞의|위의|기존|지금까지의|이전의|모든 이전|앞선"),
            _words("지시|지시사항|지침|명령|규칙|프롬프트|명령어", stem=True),
            _words("무시|잊어|잊고|잊으", stem=True),
            gap=1,
        ),
        _seq(
            _words(
                "시스템 프롬프트|시스템 메시지|초기 지시|숨겨진 지시|원래 지시|시스템 지시",
                stem=True,
            ),
            _words("보여|알려|출력|공개|말해|반복", stem=True),
            gap=1,
        ),
        _seq(
            _words("제한|제약|규칙|필터|검열", stem=True),
            _words("없는", stem=True),
            _words("ai|인공지능|어시스턴트|모델|챗봇", stem=True),
            gap=1,
        ),
    ),
    "hi": (
        _seq(
            _words("पिछले|पहले के|पूर्व|ऊपर के|ऊपर दिए गए|पिछली|पुराने|मूल"),
            _words("निर्देशों|निर्देश|आदेशों|आदेश|नियमों|नियम|हिदायतों"),
            _words("अनदेखा|नज़रअंदाज़|नजरअंदाज|भूल|भूलो|भूल जाओ|उपेक्षा|अवहेलना"),
        ),
        _seq(
            _words(
                "सिस्टम प्रॉम्प्ट|सिस्टम प्रोम्प्ट|सिस्टम संदेश|मूल निर्देश|छिपे हुए निर्देश"
                "|प्रारंभिक निर्देश|अपने निर्देश|गुप्त निर्देश"
            ),
            _words("दिखाओ|दिखाएं|दिखाइए|बताओ|बताएं|बताइए|प्रकट|लिखो|दोहराओ|प्रिंट"),
        ),
        _seq(
            _words("बिना|बगैर"),
            _words("प्रतिबंध|प्रतिबंधों|सीमाओं|सीमा|नियमों|नियम|फ़िल्टर|फिल्टर|सेंसर"),
            _words(f"एआई|सहायक|मॉडल|चैटबॉट|{_AI_LATIN}"),
            gap=2,
        ),
    ),
    "ur": (
        _seq(
            _words("پچھلی|پچھلے|سابقہ|اوپر دی گئی|پہلے کی|اصل"),
            _words("ہدایات|ہدایت|احکامات|قواعد|اصول"),
            _words("نظر انداز|نظرانداز|بھول|بھلا"),
        ),
        _seq(
            _words("سسٹم پرامپٹ|سسٹم پرومپٹ|اصل ہدایات|خفیہ ہدایات|ابتدائی ہدایات|اپنی ہدایات"),
            _words("دکھاؤ|دکھائیں|بتاؤ|بتائیں|ظاہر|دہراؤ|لکھو"),
        ),
        _seq(
            _words("بغیر|بنا"),
            _words("پابندی|پابندیوں|حدود|قواعد|فلٹر|سنسر"),
            _words(f"اے آئی|معاون|ماڈل|چیٹ بوٹ|{_AI_LATIN}"),
            gap=2,
        ),
    ),
    "ar": (
        _seq(
            _words("تجاهل|تجاهلي|تجاهلوا|انس|انسى|أهمل|اهمل|لا تلتفت إلى|لا تلتزم ب"),
            _words("التعليمات|الأوامر|الإرشادات|القواعد|التوجيهات"),
            _words("السابقة|الأصلية|المذكورة أعلاه|الأولية|الماضية|السابقه"),
            gap=1,
        ),
        _seq(
            _words("اكشف|أظهر|اظهر|اعرض|اطبع|كرر|أخبرني|اخبرني|قل لي"),
            _words(
                "موجه النظام|تعليمات النظام|رسالة النظام|التعليمات الأصلية"
                "|التعليمات المخفية|تعليماتك|التعليمات السرية"
            ),
        ),
        _seq(
            _words("ذكاء اصطناعي|مساعد|نموذج|روبوت"),
            _words("بدون|بلا|دون"),
            _words("قيود|رقابة|فلاتر|قواعد|حدود"),
            gap=1,
        ),
    ),
    "fa": (
        _seq(
            _words("دستورالعمل‌های|دستورالعمل ها|دستورالعمل|دستورات|دستورها|قوانین|قواعد"),
            _words("قبلی|پیشین|بالا|اولیه|اصلی"),
            _words("نادیده|فراموش"),
        ),
        _seq(
            _words(
                "پرامپت سیستم|پرامپت سیستمی|دستورالعمل‌های سیستم|دستورالعمل‌های اولیه"
                "|دستورات مخفی|دستورات پنهان"
            ),
            _words("نشان|بگو|فاش|چاپ|تکرار"),
        ),
        _seq(
            _words("بدون|بی"),
            _words("محدودیت|محدودیتی|قانون|قانونی|فیلتر|سانسور"),
            _words(f"هوش مصنوعی|دستیار|مدل|{_AI_LATIN}"),
            gap=2,
        ),
        _seq(
            _words(f"هوش مصنوعی|دستیار|مدل|{_AI_LATIN}"),
            _words("بدون|بی"),
            _words("محدودیت|محدودیتی|قانون|قانونی|فیلتر|سانسور"),
            gap=1,
        ),
    ),
    "bn": (
        _seq(
            _words("পূর্ববর্তী|আগের|পূর্বের|উপরের|পুরোনো|মূল"),
            _words("নির্দেশনা|নির্দেশাবলী|নির্দেশ|নির্দেশগুলো|নির্দেশগুলি|নিয়ম|নিয়মগুলো|আদেশ"),
            _words("উপেক্ষা|ভুলে|অগ্রাহ্য|অবহেলা"),
        ),
        _seq(
            _words("সিস্টেম প্রম্পট|সিস্টেম বার্তা|মূল নির্দেশনা|গোপন নির্দেশনা|প্রাথমিক নির্দেশনা|তোমার নির্দেশনা"),
            _words("দেখাও|দেখান|বলো|বলুন|প্রকাশ|প্রিন্ট|পুনরাবৃত্তি"),
        ),
        _seq(
            _words("সীমাবদ্ধতা|বিধিনিষেধ|নিয়ম|ফিল্টার|সেন্সর"),
            _words("ছাড়া|ছাড়াই|বিহীন"),
            _words(f"এআই|সহকারী|মডেল|চ্যাটবট|{_AI_LATIN}"),
            gap=2,
        ),
    ),
    "mr": (
        _seq(
            _words("मागील|आधीच्या|पूर्वीच्या|वरील|मूळ"),
            _words("सूचना|सूचनांकडे|आदेश|नियम|निर्देश"),
            _words("दुर्लक्षित|दुर्लक्ष|विसरा|विसरून|विसर"),
        ),
        _seq(
            _words("सिस्टम प्रॉम्प्ट|सिस्टीम प्रॉम्प्ट|मूळ सूचना|लपवलेल्या सूचना|प्रारंभिक सूचना"),
            _words("दाखवा|दाखव|सांगा|सांग|उघड|छापा"),
        ),
        _seq(
            _words("निर्बंधांशिवाय|बंधनांशिवाय|नियमांशिवाय|मर्यादांशिवाय|फिल्टरशिवाय"),
            _words(f"एआय|सहाय्यक|मॉडेल|{_AI_LATIN}"),
            gap=3,
        ),
    ),
    "te": (
        _seq(
            _words("మునుపటి|ముందటి|పైన ఉన్న|పై|గత|అసలు"),
            _words("సూచన|ఆదేశా|ఆదేశ|నియమా|నియమ", stem=True),
            _words("విస్మరి|పట్టించుకో|మర్చిపో|మరచిపో", stem=True),
        ),
        _seq(
            _words("సిస్టమ్ ప్రాంప్ట్|సిస్టం ప్రాంప్ట్|అసలు సూచన|దాచిన సూచన", stem=True),
            _words("చూపించు|చూపించండి|చెప్పు|చెప్పండి|బయటపెట్టు|ముద్రించు", stem=True),
        ),
        _seq(
            _words("పరిమితులు|ఆంక్షలు|నియమాలు|ఫిల్టర్లు"),
            _words("లేని|లేకుండా"),
            _words(f"ఏఐ|సహాయకుడు|మోడల్|{_AI_LATIN}", stem=True),
            gap=2,
        ),
    ),
    "ta": (
        _seq(
            _words("முந்தைய|முன்னர்|மேலே உள்ள|மேலுள்ள|பழைய|அசல்"),
            _words("வழிமுறை|அறிவுறுத்தல்|கட்டளை|விதி|அறிவுரை", stem=True),
            _words("புறக்கணி|மறந்து|மற|கண்டுகொள்ளா", stem=True),
        ),
        _seq(
            _words(
                "சிஸ்டம் ப்ராம்ப்ட்|சிஸ்டம் ப்ராம்ட்|கணினி தூண்டுதல்|அசல் அறிவுறுத்தல்|மறைக்கப்பட்ட அறிவுறுத்தல்",
                stem=True,
            ),
            _words("காட்டு|சொல்|வெளிப்படுத்து|அச்சிடு", stem=True),
        ),
        _seq(
            _words("கட்டுப்பாடுகளும்|கட்டுப்பாடுகள்|வரம்புகள்|விதிகள்|வடிகட்டிகள்"),
            _words("இல்லாத|இல்லாமல்"),
            _words(f"ஏஐ|உதவியாளர்|மாதிரி|{_AI_LATIN}", stem=True),
            gap=2,
        ),
    ),
    "tr": (
        _seq(
            _words("önceki|yukarıdaki|evvelki|ilk|orijinal|sistem"),
            _words("talimat|komut|kural|yönerge|direktif", stem=True),
            _words("yok say|görmezden gel|unut|dikkate alma|göz ardı et|gözardı et|umursama"),
            gap=1,
        ),
        _seq(
            _words(
                "sistem istemini|sistem istemi|sistem promptunu|sistem prompt"
                "|gizli talimatlarını|ilk talimatlarını|orijinal talimatlarını|talimatlarını"
            ),
            _words("göster|açıkla|yazdır|söyle|tekrarla|ifşa et"),
        ),
        _seq(
            _words("kısıtlama|sınır|kural|filtre|sansür", stem=True),
            _words("olmayan|yok"),
            _words(f"yapay zeka|yapay zekâ|asistan|model|sohbet botu|{_AI_LATIN}", stem=True),
            gap=1,
        ),
        _seq(
            _words("kısıtlamasız|sınırsız|sansürsüz|filtresiz"),
            _words(f"yapay zeka|yapay zekâ|asistan|model|{_AI_LATIN}", stem=True),
            gap=1,
        ),
    ),
    "id": (
        _seq(
            _words("abaikan|lupakan|jangan hiraukan|jangan pedulikan|acuhkan"),
            _words("instruksi|perintah|petunjuk|aturan|arahan|pedoman"),
            _words("sebelumnya|di atas|awal|asli|sistem|terdahulu"),
        ),
        _seq(
            _words("tunjukkan|tampilkan|ungkapkan|beritahu|beri tahu|cetak|ulangi|sebutkan"),
            _words(
                "prompt sistem|pesan sistem|instruksi sistem|instruksi awal|instruksi asli"
                "|instruksi tersembunyi|instruksimu|instruksi anda|promptmu"
            ),
        ),
        _seq(
            _words(f"asisten|model|kecerdasan buatan|{_AI_LATIN}"),
            _words("tanpa batasan|tanpa batas|tanpa aturan|tanpa filter|tanpa sensor"),
            gap=1,
        ),
        _seq(
            _words("kamu tidak lagi punya|kamu tidak punya|anda tidak memiliki"),
            _words("batasan|aturan|filter"),
            gap=1,
        ),
    ),
    "vi": (
        _seq(
            _words("bỏ qua|phớt lờ|lờ đi|quên|quên đi"),
            _words("hướng dẫn|chỉ dẫn|chỉ thị|lệnh|quy tắc|quy định"),
            _words("trước đó|trước|ở trên|phía trên|ban đầu|gốc|hệ thống"),
            gap=3,
        ),
        _seq(
            _words("tiết lộ|hiển thị|cho tôi xem|in ra|nhắc lại|lặp lại|cho tôi biết"),
            _words(
                "lời nhắc hệ thống|prompt hệ thống|hướng dẫn hệ thống|chỉ dẫn ban đầu"
                "|hướng dẫn ban đầu|hướng dẫn ẩn|thông điệp hệ thống"
            ),
        ),
        _seq(
            _words(f"trợ lý|mô hình|trí tuệ nhân tạo|{_AI_LATIN}"),
            _words("không có|không bị|không"),
            _words("giới hạn|hạn chế|kiểm duyệt|quy tắc|bộ lọc"),
            gap=1,
        ),
    ),
    "sw": (
        _seq(
            _words("puuza|sahau|usijali"),
            _words("maagizo|maelekezo|amri|sheria|kanuni"),
            _words("yaliyotangulia|ya awali|ya mwanzo|ya hapo awali|yaliyopita|ya juu"),
        ),
        _seq(
            _words("onyesha|fichua|niambie|chapisha|rudia"),
            _words(
                "maagizo ya mfumo|maelekezo ya mfumo|ujumbe wa mfumo|maagizo yako"
                "|maagizo yaliyofichwa"
            ),
        ),
        _seq(
            _words(f"akili bandia|msaidizi|modeli|{_AI_LATIN}"),
            _words("bila|isiyo na"),
            _words("vikwazo|mipaka|sheria|vichujio|udhibiti"),
            gap=1,
        ),
    ),
}

LANGUAGES = tuple(sorted(_LANGUAGES))
_FAMILIES = ("ignore-instructions", "reveal-prompt", "role-hijack")


def _rules() -> tuple[Rule, ...]:
    by_family: dict[str, list[str]] = {family: [] for family in _FAMILIES}
    for patterns in _LANGUAGES.values():
        by_family["ignore-instructions"].append(patterns[0])
        by_family["reveal-prompt"].append(patterns[1])
        by_family["role-hijack"].extend(patterns[2:])
    return tuple(_rule(family, *by_family[family]) for family in _FAMILIES)


MULTILINGUAL_RULES: tuple[Rule, ...] = _rules()
