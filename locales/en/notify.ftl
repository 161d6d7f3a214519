# Pushes to citizens, station alerts, channel texts.

push-status =
    Update on { $reference }: { $status }.
    Police station: { $station }
push-note = Note from the police: { $note }
push-fir = FIR number: { $fir }
push-transferred = Your report { $reference } has been transferred to { $station }.
push-match = A found item may match your lost item report { $reference }. { $station } will contact you.
station-alert = New { $kind } { $reference } for { $station }. Category: { $category }.
station-alert-transferred = Transferred to { $station }: { $kind } { $reference }. Category: { $category }.
station-match = Possible match: found item report { $found } and lost item report { $lost } ({ $category }). Please check both reports.
group-chat-only-private = Seva works in a private chat. Please message me directly.
callback-expired = That menu has expired.
cmd-start = Start or go to the main menu
cmd-help = Help and emergency numbers
cmd-cancel = Cancel what you are doing
cmd-language = Change the language
cmd-status = Check the status of a report
share-location = Share my location
share-contact = Share my number
