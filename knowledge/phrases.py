"""What the assistant says around an article, in each language the store supports."""

from __future__ import annotations

PHRASES: dict[str, dict[str, str]] = {
    "en": {
        "source": "Source",
        "helped": "Did this answer your question?",
        "yes": "Yes, thanks",
        "no": "No",
        "choose": "I found a few articles that may answer this. Which one fits best?",
        "none": "None of these, talk to a person",
        "abstain": "I'm not sure I have the answer to that in our help centre, and I'd rather not guess. "
        "You can rephrase your question, or I can connect you with a person from our team.",
        "person": "Talk to a person",
        "thanks": "Glad I could help! Is there anything else?",
        "sorry": "Sorry that didn't help. You can rephrase your question, or I can connect you with "
        "a person from our team.",
        "handoff": "I'm connecting you to a person from our support team. They will see our "
        "conversation so far, so you won't need to repeat yourself.",
        "unavailable": "Sorry, our help centre is not available right now.",
    },
    "he": {
        "source": "מקור",
        "helped": "האם זה ענה על השאלה שלך?",
        "yes": "כן, תודה",
        "no": "לא",
        "choose": "מצאתי כמה מאמרים שעשויים לענות על כך. איזה מהם מתאים?",
        "none": "אף אחד, אני רוצה לדבר עם נציג",
        "abstain": "אני לא בטוח שיש לי תשובה לכך במרכז העזרה, ואני מעדיף לא לנחש. "
        "אפשר לנסח את השאלה מחדש, או שאחבר אותך לנציג מהצוות שלנו.",
        "person": "לדבר עם נציג",
        "thanks": "שמחתי לעזור! יש עוד משהו?",
        "sorry": "מצטער שזה לא עזר. אפשר לנסח את השאלה מחדש, או שאחבר אותך לנציג.",
        "handoff": "אני מחבר אותך לנציג מצוות התמיכה. הוא יראה את השיחה שלנו עד עכשיו.",
        "unavailable": "מצטער, מרכז העזרה אינו זמין כרגע.",
    },
    "ar": {
        "source": "المصدر",
        "helped": "هل أجاب هذا عن سؤالك؟",
        "yes": "نعم، شكرا",
        "no": "لا",
        "choose": "وجدت بعض المقالات التي قد تجيب عن ذلك. أيها الأنسب؟",
        "none": "لا شيء منها، أريد التحدث مع موظف",
        "abstain": "لست متأكدا من وجود إجابة لذلك في مركز المساعدة، ولا أريد التخمين. "
        "يمكنك إعادة صياغة سؤالك، أو يمكنني توصيلك بأحد أعضاء فريقنا.",
        "person": "التحدث مع موظف",
        "thanks": "سعيد بمساعدتك! هل هناك شيء آخر؟",
        "sorry": "آسف لأن ذلك لم يساعد. يمكنك إعادة صياغة سؤالك، أو يمكنني توصيلك بموظف.",
        "handoff": "أقوم بتوصيلك بأحد أعضاء فريق الدعم. سيرى محادثتنا حتى الآن.",
        "unavailable": "عذرا، مركز المساعدة غير متاح حاليا.",
    },
    "ru": {
        "source": "Источник",
        "helped": "Это ответило на ваш вопрос?",
        "yes": "Да, спасибо",
        "no": "Нет",
        "choose": "Я нашёл несколько статей, которые могут помочь. Какая подходит лучше?",
        "none": "Ничего из этого, позовите человека",
        "abstain": "Я не уверен, что в нашем справочном центре есть ответ на этот вопрос, и не хочу "
        "гадать. Переформулируйте вопрос или я соединю вас с сотрудником.",
        "person": "Поговорить с человеком",
        "thanks": "Рад был помочь! Что-нибудь ещё?",
        "sorry": "Жаль, что это не помогло. Переформулируйте вопрос или я соединю вас с сотрудником.",
        "handoff": "Соединяю вас с сотрудником поддержки. Он увидит всю нашу переписку.",
        "unavailable": "Извините, справочный центр сейчас недоступен.",
    },
    "uk": {
        "source": "Джерело",
        "helped": "Це відповіло на ваше запитання?",
        "yes": "Так, дякую",
        "no": "Ні",
        "choose": "Я знайшов кілька статей, які можуть допомогти. Яка підходить найкраще?",
        "none": "Нічого з цього, покличте людину",
        "abstain": "Я не впевнений, що в нашому довідковому центрі є відповідь на це запитання, і не "
        "хочу вгадувати. Переформулюйте запитання або я з'єднаю вас зі співробітником.",
        "person": "Поговорити з людиною",
        "thanks": "Радий був допомогти! Щось іще?",
        "sorry": "Шкода, що це не допомогло. Переформулюйте запитання або я з'єднаю вас зі співробітником.",
        "handoff": "З'єдную вас зі співробітником підтримки. Він побачить усе наше листування.",
        "unavailable": "Вибачте, довідковий центр зараз недоступний.",
    },
}


def phrase(key: str, language: str) -> str:
    """The phrase in `language`, English when that language has no translation."""
    return PHRASES.get(language, PHRASES["en"]).get(key) or PHRASES["en"][key]
