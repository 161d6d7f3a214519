# Check status.

status-prompt = Type your reference number, for example C-7K3Q-9XM4-R.
status-typo = This reference has a typo: one character is wrong or two are swapped. Please check it.
status-malformed = That is not a reference number. It looks like C-7K3Q-9XM4-R.
status-not-found = No report with this reference was found for you.
status-view =
    { $reference } ({ $kind })
    Status: { $status }
    Police station: { $station }
    Last update: { $date }
status-fir = FIR number: { $fir }
status-history =
    History:
    { $lines }
status-history-line = { $date }: { $status }
status-submitted = submitted
status-acknowledged = received by the police station
status-under_inquiry = under inquiry
status-fir_registered = FIR registered
status-registered = registered
status-found = found
status-deposited = deposited at the police station
status-returned = returned
status-closed = closed
status-other = updated
