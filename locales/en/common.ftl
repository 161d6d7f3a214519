# Shared texts: first contact, language, global commands, errors. Same ids in locales/hi.

welcome =
    नमस्ते! सेवा में आपका स्वागत है — पुलिस की नागरिक सेवा।
    Welcome to Seva, police citizen services.
    अपनी भाषा चुनें / Choose your language:
language-prompt = Choose your language.
choice-lang-hi = हिन्दी
    .short = हिन्दी
choice-lang-en = English
    .short = English
language-set = Done, I will write in English.
state-reset = Sorry, we updated Seva and could not keep your last conversation. Let us start again.
welcome-back = Welcome to Seva.
help =
    Seva helps you file a complaint, report a lost or found item, and check its status.
    In an emergency call 112. Cyber fraud: 1930. Women helpline: 1091.
    Type "menu" for the main menu, "back" for the previous question, "cancel" to stop, "language" to change the language.
not-understood = Sorry, I did not understand that.
option-out-of-range = Please choose a number from 1 to { $count }.
menu-expired = That menu has expired. Please use the latest question.
unsupported-type = I can read text, button taps, locations, photos, documents and voice notes.
unexpected-location = Thanks, but I do not need a location here.
unexpected-contact = Thanks, but I do not need a contact here.
unexpected-media = I can take photos and documents while you file a report.
cancelled = Cancelled. Nothing was filed.
draft-discarded = Your unfinished report was discarded.
draft-expired = Your unfinished report was older than 24 hours and has been discarded.
resume-offer = You have an unfinished { $kind }. Do you want to continue it?
choice-resume-yes = Continue it
    .short = Continue
choice-resume-no = Start afresh
    .short = Start afresh
pushes-stopped = You will not get status updates any more. You can still check status. Write "start" to get them again.
pushes-started = You will get status updates again.
delete-confirm = Delete your personal data? Your name, mobile number and conversation will be removed; the police keep only anonymous statistics.
choice-delete-yes = Yes, delete
    .short = Yes, delete
choice-delete-no = No, keep it
    .short = No, keep it
data-deleted = Your personal data has been deleted.
delete-kept = Nothing was deleted.
text-empty = Please write a few words.
text-too-long = That is too long: { $got } characters. Please keep it under { $max }.
text-no-letters = Please write it in words.
choice-more = More…
    .short = More…
choice-skip = Skip
    .short = Skip
choice-done = Done
    .short = Done
kind-complaint = complaint
kind-lost = lost item report
kind-found = found item report
error-internal = Sorry, something went wrong on our side. Please try again in a moment.
# Abuse limits (SEVA_CITIZEN_MESSAGES_PER_MINUTE, SEVA_CITIZEN_REPORTS_PER_DAY).
too-many-messages = You are sending messages very quickly, so I did not read your last few. Please wait a minute, then send them again. In an emergency call 112.
report-limit-reached =
    You have already filed { $count ->
        [one] one report
       *[other] { $count } reports
    } in the last 24 hours, the most Seva takes in a day. You can file a new one after { $time } on { $date }.
    In an emergency call 112 now.
